# fundbot daemon image: one Python process, the ledger in /data (SQLite) or Postgres via FUNDBOT_DATABASE_URL.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 FUNDBOT_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY strategies ./strategies
RUN pip install --no-cache-dir . && useradd --create-home fundbot && mkdir -p /data && chown fundbot /data
USER fundbot
VOLUME ["/data"]
EXPOSE 8787
ENTRYPOINT ["fundbot"]
CMD ["run", "--dry-run"]
