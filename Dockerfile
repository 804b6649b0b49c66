# The segmenter image: `segmenter worker`, `segmenter sinks`, `segmenter redrive`, ...
# Used by docker-compose.yml; settings come from SEGMENTER_* environment variables.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY rules ./rules
COPY stream ./stream
COPY sinks ./sinks
COPY examples ./examples
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app segmenter \
    && mkdir -p /var/lib/segmenter /app/exports \
    && chown segmenter /var/lib/segmenter /app/exports

USER segmenter
ENV SEGMENTER_DATA_DIR=/var/lib/segmenter
EXPOSE 6066
ENTRYPOINT ["segmenter"]
CMD ["worker"]
