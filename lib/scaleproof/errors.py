"""Exceptions whose messages tell the user what to do next."""


class ScaleproofError(Exception):
    """Base class: every error the user is expected to read and act on."""


class ParamsError(ScaleproofError, ValueError):
    """A parameter is unknown, ill-typed, or breaks a cross-field rule."""


class ArtifactError(ScaleproofError):
    """A model, engine, cache or data file is missing, corrupt, or does not belong here."""


class EngineMismatchError(ArtifactError):
    """An engine was built for another machine, another source model, or was changed after building."""


class AccuracyError(ScaleproofError):
    """Outputs are not finite, or an export does not match its source model."""


class StageFailed(ScaleproofError):
    """A chained stage raised; the run was kept as a failed run, never published."""
