"""The service's exceptions: each carries the HTTP status it is answered with."""

from __future__ import annotations


class ServiceError(Exception):
    """A failure the client is told about in words, with a fitting status code."""

    status_code = 500


class BadRequest(ServiceError):
    """The request is malformed: the message says what is wrong."""

    status_code = 400


class UnsupportedMediaType(ServiceError):
    """The request body is declared as something other than JSON."""

    status_code = 415


class PayloadTooLarge(ServiceError):
    """The request body or the image is over a configured limit."""

    status_code = 413


class InferenceFailed(ServiceError):
    """Triton answered with an error."""

    status_code = 502


class ModelsUnavailable(ServiceError):
    """Triton or one of the models is not reachable or not ready yet."""

    status_code = 503


class InferenceTimeout(ServiceError):
    """Triton did not answer within the per-request timeout."""

    status_code = 504


class TooManySessions(ServiceError):
    """Every session slot is busy with a request in flight: none can be evicted."""

    status_code = 503


class NotFound(ServiceError):
    """The job, or the frame of a job, does not exist."""

    status_code = 404


class UnprocessableVideo(ServiceError):
    """The upload is a video container, but no frame of it can be decoded."""

    status_code = 422


class QueueFull(ServiceError):
    """Every place in the job queue is taken: the client should retry later."""

    status_code = 429


class JobStillRunning(ServiceError):
    """A request waited for a job's end longer than it may (504); the job goes on."""

    status_code = 504
