"""A stand-in for the ESA Climate Toolbox, for `examples/try-it.sh` on a
machine without the real one. Only what the example touches is here."""
