"""Models and data shaped like users' own, for the profiles and the README's "bring your own model"."""
