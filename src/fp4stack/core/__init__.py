"""The project-agnostic layer: errors, logging hook, the one subprocess runner, git, zip
copying, artifact download and small file helpers. Imports nothing else from fp4stack."""
