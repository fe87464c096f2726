"""``python -m bot.server [rasa run options]``: the Rasa server on kefu's host, port and API token.

``rasa run --enable-api`` with ``--interface``/``--port`` from ``KEFU_RASA_HOST``/``KEFU_RASA_PORT`` (loopback
unless set) and ``--auth-token`` from ``KEFU_RASA_TOKEN``, which every endpoint of Rasa's HTTP API then requires.
The token goes to Rasa's argument parser inside this process, never onto a command line other users can read in
``ps``. No ``--cors``: only kefu's web app talks to Rasa, server to server. Further options (``--model``,
``--endpoints``, ``--credentials``) are passed through.
"""

from __future__ import annotations

import sys

from router.settings import Settings, get_settings


def rasa_run_arguments(settings: Settings, extra: list[str]) -> list[str]:
    """``rasa`` CLI arguments for kefu's Rasa server; refuses to serve an API nobody has to authenticate to."""
    if not settings.rasa_token:
        raise SystemExit("KEFU_RASA_TOKEN is not set: Rasa's HTTP API would be open to anyone who reaches it")
    host, port = settings.rasa_host, str(settings.rasa_port)
    # One argument with "=": a random token may start with "-", which argparse would take for an option.
    return ["run", "--enable-api", "--interface", host, "--port", port, f"--auth-token={settings.rasa_token}", *extra]


def main() -> None:
    """Install kefu's Rasa patches, then run Rasa's own command line with kefu's server arguments."""
    import rasa
    import rasa.__main__

    from bot import patches

    try:
        patches.install(rasa_version=rasa.__version__)
    except patches.UnsupportedRasaVersion as refused:
        raise SystemExit(str(refused)) from refused
    sys.argv = ["rasa", *rasa_run_arguments(get_settings(), sys.argv[1:])]
    rasa.__main__.main()


if __name__ == "__main__":
    main()
