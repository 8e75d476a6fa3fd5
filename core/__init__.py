"""The ground floor every app stands on: roles, and the rules shared by all of them.

Nothing here imports another app of the project (see the import contracts in
pyproject.toml, `[tool.importlinter]`).
"""
