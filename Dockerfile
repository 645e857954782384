# copbot: `docker build -t copbot .` then
# `docker run -v $PWD/config:/config -p 8080:8080 copbot` with /config/config.toml (see config.example.toml).
FROM python:3.11-slim

# PYTHONNODEBUGRANGES: bytecode with line numbers but without the column ranges that only draw ^^^ under a
# traceback's line (smaller code objects: README, Performance).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONNODEBUGRANGES=1

RUN useradd --create-home --uid 10001 copbot
WORKDIR /app

COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY bot ./bot
COPY plugins ./plugins
COPY migrations ./migrations
RUN pip install --constraint constraints.txt . && mkdir -p /data /config && chown copbot:copbot /data /config

USER copbot
WORKDIR /data
# The web part must listen on all interfaces inside the container for the published port to reach it.
ENV COPBOT_WEB__HOST=0.0.0.0 COPBOT_DATABASE_URL=sqlite+aiosqlite:////data/copbot.db
EXPOSE 8080
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"

ENTRYPOINT ["copbot"]
CMD ["run", "--config", "/config/config.toml"]
