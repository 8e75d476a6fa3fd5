# The production image: gunicorn serves the web app; the same image runs the
# Celery worker and beat (see docker-compose.yml). Settings come from the
# environment; see .env.example.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=crm.settings.production \
    CRM_VAR_DIR=/app/var

# psycopg[binary] ships its own libpq, so no system packages are needed.
RUN groupadd --system --gid 1000 crm \
 && useradd --system --uid 1000 --gid crm --home-dir /app --shell /usr/sbin/nologin crm

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt build-constraints.txt ./
RUN PIP_CONSTRAINT=build-constraints.txt pip install -r requirements.txt

# The code stays owned by root: the app user can read it, not change it.
COPY . .

# The throwaway keys (random, made for this one command) and host only let the
# production settings import; they are not kept in the image. Only var/ (the
# embedded-default data directory, unused with PostgreSQL + Redis) is writable.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" DJANGO_ALLOWED_HOSTS=localhost \
    CRM_EMAIL_HASH_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(32))')" python manage.py collectstatic --noinput \
 && mkdir -p /app/var/imports \
 && chown -R crm:crm /app/var

USER crm

EXPOSE 8000

# Workers: set WEB_CONCURRENCY (gunicorn reads it); extra flags: GUNICORN_CMD_ARGS.
CMD ["gunicorn", "crm.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
