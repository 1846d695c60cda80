# Reelbot: one process, one SQLite file under /data.
#   docker build -t reelbot .
#   docker run -d --name reelbot --env-file .env -v reelbot-data:/data reelbot
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite:////data/bot.db
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 reelbot \
    && mkdir -p /data \
    && chown reelbot:reelbot /data
USER reelbot
WORKDIR /home/reelbot
VOLUME ["/data"]
# /healthz answers only when METRICS_PORT is set; without it the check passes as long as the process runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; p = os.environ.get('METRICS_PORT'); sys.exit(0) if not p else urllib.request.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4).close()"]
# SIGTERM (docker stop) makes the bot stop taking work and exit 0; jobs resume at the next start.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
