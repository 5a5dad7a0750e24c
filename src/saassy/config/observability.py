"""Checks of the observability settings: the metrics token and the Sentry DSN."""

from pydantic import SecretStr

MIN_METRICS_TOKEN = 24


def guessable_metrics_token(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value().strip()) < MIN_METRICS_TOKEN:
        raise ValueError(
            f"shorter than {MIN_METRICS_TOKEN} characters: make one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value


def sentry_dsn(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        from sentry_sdk.utils import BadDsn, Dsn  # only where error tracking is wanted

        try:
            Dsn(value.get_secret_value())
        except BadDsn:
            raise ValueError("not a Sentry DSN (https://<key>@<host>/<project>)") from None
    return value
