# fundbot daemon image: one Python process, the ledger in /data (SQLite) or Postgres via FUNDBOT_DATABASE_URL.
# It installs what `fundbot run` and `fundbot emulator` need (no backtest plots, no test tools), at the exact
# versions of constraints.txt.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FUNDBOT_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY strategies ./strategies
RUN pip install -c constraints.txt . \
    && useradd --create-home fundbot && mkdir -p /data && chown fundbot /data
USER fundbot
VOLUME ["/data"]
EXPOSE 8787
ENTRYPOINT ["fundbot"]
CMD ["run", "--dry-run"]
