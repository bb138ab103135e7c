"""AWS clients for checks: made on first use, every call bounded, errors named and secret-free."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from core.config.aws import AwsConfig
from core.errors import CheckError


def aws_client(service: str, aws: AwsConfig, region: str | None, where: str) -> Any:
    """A boto3 client with drwatch's timeouts and retries; a missing region or a bad endpoint is
    the calling check's config error, not the daemon's."""
    try:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=aws.endpoint_url or None,
            region_name=region or aws.region or None,
            aws_access_key_id=aws.access_key_id or None,
            aws_secret_access_key=aws.secret_access_key or None,
            config=BotoConfig(
                connect_timeout=aws.connect_timeout,
                read_timeout=aws.read_timeout,
                retries={"max_attempts": aws.max_attempts, "mode": "standard"},
                s3={"addressing_style": "path"} if aws.endpoint_url else None,
            ),
        )
    except NoRegionError:
        raise CheckError(
            "config", f"{where}: no AWS region (set it in config or AWS_REGION)"
        ) from None
    except (BotoCoreError, ValueError) as exc:
        raise CheckError("config", f"{where}: cannot set up the {service} client: {exc}") from None


def aws_error(where: str, exc: Exception, action: str) -> CheckError:
    """A CheckError for a failed AWS call, naming `where` (a store, an instance), no secret."""
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return CheckError("timeout", f"{where}: {action}: timed out")
    if isinstance(exc, EndpointConnectionError):
        return CheckError("connect", f"{where}: {action}: cannot reach the endpoint")
    if isinstance(exc, NoCredentialsError):
        return CheckError("permission", f"{where}: {action}: no AWS credentials found")
    if isinstance(exc, ClientError):
        error: Any = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or "error"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return CheckError("permission", f"{where}: {action}: access denied ({code})")
        if code in ("NoSuchBucket", "DBInstanceNotFound", "DBInstanceNotFoundFault"):
            return CheckError("config", f"{where}: {action}: not found ({code})")
        return CheckError("query", f"{where}: {action}: {code} (HTTP {status})")
    return CheckError("connect", f"{where}: {action}: {type(exc).__name__}")
