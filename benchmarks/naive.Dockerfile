# The naive image for benchmarks/image_build.py: the same base and the same wheelhouse as
# app/Dockerfile, but one stage that copies everything and installs it in place (wheels,
# pip and setuptools stay in the image). Build context: app/.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY . /src
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /src/wheelhouse -r /src/requirements.lock \
 && /opt/venv/bin/pip install --no-index --find-links /src/wheelhouse --no-deps /src
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["gunicorn", "-c", "python:velocity_app.gunicorn_conf", "velocity_app.wsgi:app"]
