"""``kefu telegram …``: long polling for development and webhook registration for production."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from router.cli_common import fail, settings_or_exit
from router.settings import Settings

# python-telegram-bot is imported inside the commands that talk to Telegram, so that registering them does not slow
# down every other `kefu` command.

console = Console()
app = typer.Typer(help="Connect the Telegram bot (KEFU_TELEGRAM_TOKEN) to the Rasa server.", no_args_is_help=True)


def _configured_settings() -> Settings:
    settings = settings_or_exit()
    missing = [name for name in ("telegram_token", "telegram_secret_token") if not getattr(settings, name)]
    if missing:
        names = ", ".join(f"KEFU_{name.upper()}" for name in missing)
        fail(f"set {names} (the secret token is any random string the webhook checks)")
    return settings


@app.command()
def poll(
    rounds: int = typer.Option(0, help="Stop after this many answered getUpdates calls (0: run until Ctrl-C)."),
    long_poll_seconds: int = typer.Option(25, help="How long each getUpdates call may wait for news."),
) -> None:
    """Long-poll Telegram and forward each update to the Rasa server's Telegram webhook (no public URL needed); an
    outage of Telegram is waited out."""
    from router.delivery.telegram_poll import TelegramPoller, TelegramRefused

    settings = _configured_settings()
    poller = TelegramPoller(settings, long_poll_seconds)
    console.print(f"polling Telegram → {poller.webhook_url} (Ctrl-C to stop)")
    try:
        stats = asyncio.run(poller.run(rounds or None))
    except KeyboardInterrupt:
        stats = poller.stats
    except TelegramRefused as error:
        fail(str(error))
    console.print(f"[green]✓[/] forwarded {stats.forwarded}, duplicates {stats.duplicates}, refused {stats.refused}")


@app.command("set-webhook")
def set_webhook(
    public_url: str = typer.Argument(..., help="Public HTTPS base URL of the kefu web app, e.g. https://kefu.example"),
) -> None:
    """Tell Telegram to post updates to the kefu web app, signed with KEFU_TELEGRAM_SECRET_TOKEN."""
    from telegram.error import TelegramError

    from router.delivery.telegram import TelegramSender

    settings = _configured_settings()
    url = public_url.rstrip("/") + "/webhooks/telegram/webhook"

    async def register() -> None:
        sender = TelegramSender(settings.telegram_token, settings.telegram_api_url)
        try:
            await sender.call(
                sender.bot.set_webhook,
                url=url,
                secret_token=settings.telegram_secret_token,
                allowed_updates=["message", "callback_query"],
            )
        finally:
            await sender.close()

    try:
        asyncio.run(register())
    except TelegramError as error:
        fail(
            f"Telegram at {settings.telegram_api_url} did not set the webhook ({error}): "
            "check KEFU_TELEGRAM_TOKEN and KEFU_TELEGRAM_API_URL"
        )
    console.print(f"[green]✓[/] Telegram posts updates to {url}")
