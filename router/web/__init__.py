"""The kefu web app: agent console, supervisor view, JSON API (and the admin, analytics and web chat routers)."""
