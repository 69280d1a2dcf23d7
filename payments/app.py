"""The payment system's HTTP JSON API (docs/payments-api.md, docs/payments-openapi.yaml).

A thin shell: every route parses JSON, calls PaymentSystem, and answers JSON. Every error is
`{"error": code, "message": sentence}` with the status of its PaymentsError class.

Who may call what:
- phones: POST /v1/holds (signed by the shopper's key), GET /v1/holds/<id> (the random id is the
  capability), GET /v1/notices/<charge id> (a request signed by the charge's shopper, or the admin token:
  payments/notice_access.py);
- gates: POST /v1/charges (signed by an enrolled gate key), POST /v1/notices and
  POST /v1/gates/<gate>/recovery (the request signed by the gate's enrolled key: payments/gate_auth.py),
  GET /v1/feed (the answer is signed);
- the store's back office: everything under admin, with `Authorization: Bearer <admin token>`.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from payments.context import PaymentsConfig
from payments.errors import BadRequest, BankUnavailable, Forbidden, PaymentsError, Unauthorized
from payments.system import ChargeRefused, PaymentSystem
from payments.wire import b64, charge_id, enrolment_key, unb64

# A gate's whole batch of 500 ordinary charges fits; the server refuses a larger body before reading it.
MAX_BODY_BYTES = 2 * 1024 * 1024
log = logging.getLogger(__name__)


def create_app(config: PaymentsConfig, *, system: PaymentSystem | None = None) -> Flask:
    """The app for one store. `app.extensions["payments"]` is the PaymentSystem; close it when done."""
    system = system or PaymentSystem(config)
    app = Flask("payments")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = True  # type: ignore[attr-defined]
    app.extensions["payments"] = system

    def body() -> dict[str, Any]:
        try:
            data = request.get_json(silent=True)
        except RecursionError as exc:  # JSON nested thousands deep: the decoder gives up
            raise BadRequest("the body is JSON nested too deep", code="bad_request") from exc
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object (Content-Type: application/json)")
        return data

    def stored(status: int, text: str) -> Response:
        return Response(text, status=status, mimetype="application/json")

    def admin(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            token = config.admin_token
            if not token:
                raise Forbidden("admin endpoints are disabled: no admin token set", code="admin_disabled")
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise Unauthorized("admin endpoints need 'Authorization: Bearer <admin token>'")
            return view(*args, **kwargs)

        return guarded

    @app.errorhandler(PaymentsError)
    def payments_error(exc: PaymentsError):
        if isinstance(exc, ChargeRefused):  # signed, so the gate can tell it from a proxy's 4xx
            return jsonify(error=exc.code, message=exc.message, refusal=b64(exc.refusal)), exc.status
        return jsonify(error=exc.code, message=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        response = jsonify(error=code, message=exc.description or exc.name)
        response.status_code = exc.code or 500
        for name, value in exc.get_headers():  # e.g. 405's Allow
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("internal error")
        message = f"internal error ({type(exc).__name__}); see the server log"
        return jsonify(error="internal", message=message), 500

    # -- public ---------------------------------------------------------------------------------------

    @app.get("/v1/health")
    def health():
        # "degraded": phones can still fetch notices and gates can still send charges (they wait in the
        # settlement queue), but no new hold can be placed beyond stored value until the bank answers.
        if config.bank is None:
            return jsonify(status="ok", store=config.store_id, currency=config.currency, bank=None)
        try:
            config.bank.check()
        except BankUnavailable as exc:
            bank = {"reachable": False, "reason": exc.message}
        else:
            bank = {"reachable": True}
        status = "ok" if bank["reachable"] else "degraded"
        return jsonify(status=status, store=config.store_id, currency=config.currency, bank=bank)

    @app.get("/v1/keys")
    def keys():
        keys = [{"key_id": kid, "public_key": system.trusted.get(kid).hex()} for kid in system.trusted.ids()]
        current = config.key.key_id if config.key else None
        return jsonify(store=config.store_id, current=current, keys=keys)

    # -- phones ---------------------------------------------------------------------------------------

    @app.post("/v1/holds")
    def post_hold():
        raw = unb64(body().get("request"), "request")
        return stored(*system.place_hold(raw))

    @app.get("/v1/holds/<hold_id>")
    def get_hold(hold_id: str):
        return jsonify(system.hold(hold_id))

    @app.get("/v1/notices/<charge_id>")
    def get_notice(charge_id: str):
        given = request.headers.get("Authorization", "")
        token = config.admin_token
        is_admin = bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
        return jsonify(system.notice(charge_id, authorization=given, admin=is_admin))

    # -- gates ----------------------------------------------------------------------------------------

    @app.post("/v1/charges")
    def post_charge():
        data = body()
        if "charges" not in data:  # the older flow: one charge, settled while the gate waits
            return stored(*system.take_charge(unb64(data.get("charge"), "charge")))
        charges = data["charges"]
        if not isinstance(charges, list) or not charges:
            raise BadRequest("charges must be a non-empty list of base64 charges")
        raws = [unb64(c, f"charges[{i}]") for i, c in enumerate(charges)]
        return jsonify(results=[r.to_json() for r in system.receive_charges(raws)])

    @app.post("/v1/notices")
    def post_notices():
        # Not an admin call: the gate's own signature over the pull authenticates it (notice_access).
        data = body()
        ids = data.get("charges")
        if not isinstance(ids, list) or not 0 < len(ids) <= config.max_batch:
            raise BadRequest(f"charges must be a list of 1..{config.max_batch} charge ids")
        return jsonify(notices=system.notices(data, [charge_id(c, "charges[]") for c in ids]))

    @app.get("/v1/feed")
    def get_feed():
        try:
            since = int(request.args["since"])
            nonce = bytes.fromhex(request.args.get("nonce", ""))
        except (KeyError, ValueError) as exc:
            raise BadRequest("since (an integer) and nonce (64 hex digits) are required") from exc
        if since < 0 or len(nonce) != 32:
            raise BadRequest("since must be >= 0 and nonce 64 hex digits (32 random bytes)")
        return jsonify(system.feed(since, nonce))

    # -- the store's back office ----------------------------------------------------------------------

    @app.post("/v1/shoppers")
    @admin
    def post_shopper():
        data = body()
        public_key = enrolment_key(data, "the phone's")
        created, view = system.enrol_shopper(data.get("shopper"), public_key, data.get("bank_account"))
        return jsonify(view), 201 if created else 200

    @app.get("/v1/shoppers/<shopper>")
    @admin
    def get_shopper(shopper: str):
        return jsonify(system.shopper(shopper))

    @app.post("/v1/shoppers/<shopper>/top-ups")
    @admin
    def post_top_up(shopper: str):
        data = body()
        created, view = system.top_up(shopper, data.get("amount"), data.get("reference"))
        return jsonify(view), 201 if created else 200

    @app.post("/v1/gates")
    @admin
    def post_gate():
        data = body()
        public_key = enrolment_key(data, "the gate's")
        created, view = system.enrol_gate(data.get("gate"), public_key, data.get("instance"))
        return jsonify(view), 201 if created else 200

    @app.post("/v1/gates/<gate>/recovery")
    def post_gate_recovery(gate: str):
        # Not an admin call: the gate's own signature over the request authenticates it.
        return jsonify(system.gate_recovery(gate, body()))

    @app.get("/v1/gates")
    @admin
    def get_gates():
        return jsonify(gates=system.gates())

    @app.delete("/v1/gates/<gate>")
    @admin
    def delete_gate(gate: str):
        return jsonify(system.revoke_gate(gate))

    @app.post("/v1/catalog/prices")
    @admin
    def post_prices():
        version = system.set_prices(body().get("items"))
        return jsonify(version=version), 201

    @app.get("/v1/charges/<charge_id>")
    @admin
    def get_charge(charge_id: str):
        return jsonify(system.charge(charge_id))

    @app.get("/v1/reconciliation")
    @admin
    def get_reconciliation():
        return jsonify(system.reconcile())

    @app.post("/v1/sweep")
    @admin
    def post_sweep():
        return jsonify(system.sweep())

    return app


__all__ = ["PaymentSystem", "PaymentsConfig", "b64", "create_app"]
