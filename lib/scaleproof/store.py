"""Where runs and fleets are kept: a local folder, or an fsspec URL (s3://bucket/prefix, gs://…, file://…).

One small object for both, so the code that keeps a run does not branch on the kind of storage. Runs are
always made in a local folder (notebooks, engines and LoadGen write files); a store at a URL receives the
finished folder (`put`) and gives folders back (`get`). A local store's `local_path` is the folder itself,
so nothing is copied there.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def is_url(location: str) -> bool:
    """Whether `location` names an fsspec filesystem (`scheme://…`) rather than a local path."""
    return "://" in str(location)


class Store:
    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self.is_url = is_url(self.location)
        if self.is_url:
            import fsspec

            self.fs, self.root = fsspec.core.url_to_fs(self.location)
        else:
            self.local_path = Path(self.location).resolve()

    def __str__(self) -> str:
        return self.location if self.is_url else str(self.local_path)

    def child(self, rel: str) -> Store:
        """The store of a folder inside this one."""
        return Store(f"{self.location.rstrip('/')}/{rel}" if self.is_url else self.local_path / rel)

    def _url(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}" if rel else self.root

    def exists(self, rel: str = "") -> bool:
        return self.fs.exists(self._url(rel)) if self.is_url else (self.local_path / rel).exists()

    def read_text(self, rel: str) -> str:
        if self.is_url:
            return self.fs.cat_file(self._url(rel)).decode()
        return (self.local_path / rel).read_text()

    def write_text(self, rel: str, text: str) -> None:
        """Write a small file, making its folder first (a no-op on object stores)."""
        if self.is_url:
            self.fs.makedirs(self._url(str(Path(rel).parent)) if Path(rel).parent != Path(".") else self.root,
                             exist_ok=True)
            self.fs.pipe_file(self._url(rel), text.encode())
        else:
            (self.local_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.local_path / rel).write_text(text)

    def remove(self, pattern: str) -> None:
        """Delete the files directly in this folder whose names match `pattern` (a glob; folders are left)."""
        if self.is_url:
            for f in self.fs.glob(self._url(pattern)):
                if self.fs.isfile(f):
                    self.fs.rm(f)
        else:
            for f in self.local_path.glob(pattern):
                if f.is_file():
                    f.unlink()

    def put(self, local: Path, rel: str) -> None:
        """A local file or folder into the store at `rel`; a folder's contents are merged into `rel` whether or
        not it exists (a local store copies unless it is already there)."""
        local = Path(local)
        if self.is_url:
            parent = str(Path(rel).parent)
            self.fs.makedirs(self._url(parent) if parent != "." else self.root, exist_ok=True)
            if local.is_dir():  # the trailing slash: the folder's contents, never a nested copy of the folder
                self.fs.put(f"{str(local).rstrip('/')}/", self._url(rel), recursive=True)
            else:
                self.fs.put(str(local), self._url(rel))
            return
        target = (self.local_path / rel).resolve()
        if local.resolve() == target:
            return
        if target.is_relative_to(local.resolve()):
            raise ValueError(f"cannot copy {local} into {target}, a folder inside it")
        target.parent.mkdir(parents=True, exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            shutil.copy2(local, target)

    def get(self, rel: str, local: Path) -> None:
        """The store's file or folder at `rel` into the local path `local` (nothing if it does not exist)."""
        if not self.exists(rel):
            return
        if self.is_url:
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            if self.fs.isdir(self._url(rel)):  # the contents, merged into `local` whether or not it exists
                self.fs.get(f"{self._url(rel).rstrip('/')}/", str(local), recursive=True)
            else:
                self.fs.get(self._url(rel), str(local))
            return
        source = self.local_path / rel
        if source.resolve() == Path(local).resolve():
            return
        if source.is_dir():
            shutil.copytree(source, local, dirs_exist_ok=True)
        else:
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, local)
