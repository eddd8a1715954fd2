"""The ``hftstream`` command line. Each sub-app is thin: it builds config and calls a library function."""
