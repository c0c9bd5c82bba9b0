# compte-usager: the provider's container image (one instance; run several behind a proxy).
#   docker build -t compte-usager .
#   docker run -p 8000:8000 --env-file /etc/idp/idp.env -v /srv/idp-keys:/srv/keys compte-usager
# The application runs from its source tree (templates and config live beside the idp
# package), installed in editable mode into its own virtualenv.
FROM python:3.11-slim
RUN useradd --system --home-dir /srv --shell /usr/sbin/nologin idp \
    && mkdir -p /srv/instance /srv/keys && chown idp /srv/instance /srv/keys
WORKDIR /srv/app
COPY pyproject.toml README.md babel.cfg ./
COPY idp ./idp
COPY clients ./clients
COPY templates ./templates
COPY config ./config
RUN python -m venv /opt/idp && /opt/idp/bin/pip install --no-cache-dir -e .
USER idp
ENV PATH=/opt/idp/bin:$PATH \
    IDP_INSTANCE_DIR=/srv/instance \
    IDP_KEYS_DIR=/srv/keys \
    IDP_AUTO_MIGRATE=false \
    MALLOC_ARENA_MAX=2
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["idp", "serve", "--host", "0.0.0.0", "--port", "8000"]
