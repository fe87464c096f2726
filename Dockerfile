# The image compose.yaml builds for every kefu process (not built on kefu's CI: no Docker engine runs there).
FROM python:3.10-slim-bookworm
WORKDIR /app
COPY . .
RUN scripts/install && rm -rf /var/lib/apt/lists/*
ENV PATH=/app/.venv/bin:$PATH RASA_TELEMETRY_ENABLED=false PYTHONUNBUFFERED=1
CMD ["kefu", "web"]
