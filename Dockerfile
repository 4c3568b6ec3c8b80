FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY . .
RUN DEBUG=false SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && useradd --system --home /app emr && chown -R emr /app \
    && mkdir -p /var/run/emr-metrics && chown emr /var/run/emr-metrics
USER emr
EXPOSE 8000
CMD ["gunicorn", "emr.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
