"""Liveness and version: ``/health``, ``/ping``, ``/version``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from cairn import __version__

router = APIRouter(tags=["health"])


@router.get("/health", response_class=PlainTextResponse)
async def health() -> str:
    return "OK"


@router.get("/ping", response_class=PlainTextResponse, include_in_schema=False)
async def ping() -> str:
    return "OK"


@router.get("/version", response_class=PlainTextResponse)
async def version() -> str:
    return __version__
