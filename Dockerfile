# One image for every hftstream process (processors, the tape sink, the CLI). docker-compose.yml builds it.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY connectors ./connectors
COPY schemas ./schemas
COPY infra ./infra
COPY native ./native
RUN pip install --no-cache-dir -e .   # editable: schemas/ and infra/ are read from /app; no cargo here: pure Python (DECISIONS #56)
ENV HFTSTREAM_DATA=/data
VOLUME ["/data"]
ENTRYPOINT ["hftstream"]
CMD ["--help"]
