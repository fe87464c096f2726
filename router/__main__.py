"""``python -m router`` is the ``kefu`` command, for environments where the script is not on PATH."""

from router.cli import app

app(prog_name="kefu")
