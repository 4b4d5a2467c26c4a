"""Deployable processes of modelstream and their settings (the only place that reads
the environment), the local stack, and the ``modelstream`` command."""
