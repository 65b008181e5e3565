# One image for the API and every worker. Build the GPU variant with
#   docker build --build-arg PIP_EXTRAS=gpu -t pairscope:gpu .
FROM python:3.11-slim

ARG PIP_EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY worker ./worker
COPY models ./models
COPY migrations ./migrations
COPY pairscope ./pairscope
RUN pip install ".${PIP_EXTRAS:+[$PIP_EXTRAS]}"

RUN useradd --create-home pairscope && mkdir -p /data && chown pairscope /data
USER pairscope
ENV PAIRSCOPE_DATA_DIR=/data
EXPOSE 8000
CMD ["pairscope", "serve"]
