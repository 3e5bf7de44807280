"""The ``nbdeploy`` command line: the same operations as the library, for shells and CI."""
