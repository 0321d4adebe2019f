# CINR web service and workers in one image.
#   GPU (default): docker build -t cinr .
#   CPU only:      docker build -t cinr --build-arg VARIANT=cpu .
# The same image runs the ASGI server (daphne), the Celery workers and manage.py; docker-compose.yml wires them.
ARG VARIANT=cuda

# CUDA runtime base: the torch wheel brings its own CUDA libraries, the base image brings the driver glue and
# cuDNN-compatible system libraries. Ubuntu 24.04 ships Python 3.12.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS base-cuda
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV TORCH_INDEX_URL=""

# CPU base: Debian's Python 3.11 image; torch comes from the CPU-only wheel index (no CUDA libraries).
FROM python:3.11-slim-bookworm AS base-cpu
# gcc + libc headers: inr.native compiles its libmvec sine kernel on first use (without them fitting falls back to
# torch.sin, 2-3x slower on AMD CPUs).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
ENV TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu"

FROM base-${VARIANT}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    MEDIA_ROOT=/data/media CINR_VAR_DIR=/data/var
WORKDIR /app

COPY requirements.txt .
RUN python3 -m venv $VIRTUAL_ENV \
    && pip install --upgrade pip \
    && if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" "$(grep '^torch==' requirements.txt)"; fi \
    && grep -v -E '^(playwright|schemathesis)==' requirements.txt > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY manage.py pyproject.toml ./
COPY inr ./inr
COPY training ./training
COPY cinr_web ./cinr_web
COPY frontend ./frontend

RUN useradd --create-home --uid 1000 cinr && mkdir -p /data/media /data/var && chown -R cinr /data
USER cinr
VOLUME ["/data"]
EXPOSE 8000

# Default: the web server. Workers override the command (see docker-compose.yml).
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "cinr_web.asgi:application"]
