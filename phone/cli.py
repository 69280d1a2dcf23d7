"""`selfcheckout phone ...`: the reference phone on the command line, one command per screen of an app.

Amounts are typed and shown in major units ("25.50"); everything underneath is integer minor units.
Every error is one line: what was refused and why, and the state folder is left as it was.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from drivers.errors import DriverError
from drivers.virtual_card import VPCD_HOST, VPCD_PORT
from gate.errors import GateError
from gate.money import format_amount
from gate.protocol.documents import DeductionNotice, ExitReceipt
from gate.protocol.keys import key_id, read_public_key
from gate.protocol.kiosk import ProposedList
from phone import messages
from phone.basket import Basket, Line
from phone.errors import PhoneError
from phone.kiosk_tap import tap_kiosk
from phone.money import parse_amount
from phone.terminal import Phone, Visit

DEFAULT_STATE = Path(click.get_app_dir("selfcheckout")) / "phone"


class _PhoneGroup(click.Group):
    """Turn the phone's (and the protocol's and the NFC driver's) errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (PhoneError, GateError, DriverError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_PhoneGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SELFCHECKOUT_PHONE_STATE",
    default=DEFAULT_STATE,
    show_default=True,
    help="The phone's state folder (key, enrolment, catalog, visits). Env: SELFCHECKOUT_PHONE_STATE.",
)
@click.pass_context
def phone_group(ctx: click.Context, state: Path) -> None:
    """The reference shopper's phone: key, enrolment, hold, scanning, signing, tapping, receipts, notices.

    A visit: `init` once, `enrol` once per store, then `hold --estimate 30`, `scan CODE` item by item,
    `confirm`, `tap` at the gate, and later `notice`.
    """
    ctx.obj = Phone(state)


pass_phone = click.make_pass_decorator(Phone)


@phone_group.command()
@pass_phone
def init(phone: Phone) -> None:
    """Create the state folder and the shopper's Ed25519 key (the secret key file is mode 600)."""
    phone = Phone.init(phone.state.path)
    click.echo(f"shopper key {phone.key_id} created in {phone.state.path}")
    click.echo(f"public key {phone.public_key.hex()}")


@phone_group.command()
@click.option(
    "--ps", "ps_url", required=True, help="The store payment system's URL, e.g. http://127.0.0.1:8600."
)
@click.option("--user", "shopper", required=True, help="Your user name at the store.")
@click.option("--bank-account", help="The bank account to bind (covers what stored value does not).")
@click.option(
    "--token",
    envvar="SELFCHECKOUT_PS_TOKEN",
    help="Authorises the enrolment (the reference PS's admin token). Env: SELFCHECKOUT_PS_TOKEN. "
    "Without it the store must have enrolled this phone's key already. Never stored.",
)
@click.option("--ps-key-id", help="The PS key id shown in the store: refuse a PS that does not sign with it.")
@click.option(
    "--ps-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The PS public key file (ps.pub) given with the app: pin only that key.",
)
@pass_phone
def enrol(
    phone: Phone,
    ps_url: str,
    shopper: str,
    bank_account: str | None,
    token: str | None,
    ps_key_id: str | None,
    ps_key_file: Path | None,
) -> None:
    """Enrol this phone's key with the store's payment system and pin the keys it trusts.

    Without --ps-key-id or --ps-key-file the keys the PS lists are pinned on first use: compare the key
    id printed with the one the store shows.
    """
    if ps_key_file is not None:
        ps_key_id = key_id(read_public_key(ps_key_file))
    profile = phone.enrol(ps_url, shopper, bank_account, token=token, ps_key_id=ps_key_id)
    click.echo(
        f"enrolled {profile.shopper} at store {profile.store} ({profile.currency}) with key {phone.key_id}"
    )
    kids = ", ".join(sorted(key_id(k) for k in profile.ps_keys))
    how = "as given" if ps_key_id else "on first use: check it against the one the store shows"
    click.echo(f"pinned payment-system key(s) {kids} ({how})")
    _echo_gates(profile.gates)


@phone_group.command()
@pass_phone
def sync(phone: Phone) -> None:
    """Refresh the store's catalog and gate keys from the payment system's signed feed."""
    result = phone.sync()
    click.echo(
        f"catalog at version {result.catalog_version}: {result.products} products "
        f"({result.price_changes} new price changes)"
    )
    _echo_gates({g: () for g in result.gates})


@phone_group.command()
@click.option(
    "--estimate", help="Your own estimate of this visit's spend, e.g. 30 or 30.50 (asked if absent)."
)
@click.option(
    "--replace", is_flag=True, help="Ask for a new hold although one is open (the basket comes along)."
)
@pass_phone
def hold(phone: Phone, estimate: str | None, replace: bool) -> None:
    """Ask the payment system to hold your estimate before shopping (claim 3) and check its voucher."""
    currency = phone.profile.currency
    if estimate is None:
        estimate = click.prompt(f"How much do you expect to spend this visit ({currency})?")
    voucher = phone.request_hold(parse_amount(estimate, currency), replace_open=replace)
    click.echo(
        f"hold {voucher.hold.hex()} of {_money(voucher.amount, currency)} verified "
        f"({_money(voucher.stored_value, currency)} stored value, "
        f"{_money(voucher.bank, currency)} at the bank), valid until {_when(voucher.expires)}"
    )


@phone_group.command()
@click.argument("codes", nargs=-1, required=True)
@click.option(
    "--qty", default=1, show_default=True, type=click.IntRange(1, 10_000), help="Pieces of each code."
)
@click.option(
    "--more/--done",
    "go_on",
    default=None,
    help="Answer 'go on shopping?' without asking: --more to go on, --done to confirm the list now.",
)
@click.option("--yes", is_flag=True, help="With --done: sign the list without asking.")
@pass_phone
def scan(phone: Phone, codes: tuple[str, ...], qty: int, go_on: bool | None, yes: bool) -> None:
    """Add goods item by item (claim 4): each barcode is checked and priced from the store's catalog."""
    for code in codes:
        result = phone.scan(code, qty)
        line, currency = result.line, result.currency
        click.echo(f"+ {_line_text(line.name, line.qty, line.unit_price, line.grams, line.total, currency)}")
        if result.product.category in messages.CHECKED_CATEGORIES:
            click.echo(f"  {result.product.category}: {messages.CHECKED_CATEGORIES[result.product.category]}")
        state = "left" if not result.over else "OVER your hold: the gate would refuse"
        click.echo(
            f"  total {_money(result.total, currency)} of your {_money(result.hold_amount, currency)} hold "
            f"({_money(abs(result.remaining), currency)} {state})"
        )
    if go_on is None:
        go_on = click.confirm("Go on shopping?", default=True)
    if go_on:
        return
    _confirm_and_sign(phone, yes)


@phone_group.command()
@click.argument("code")
@click.option("--qty", default=1, show_default=True, type=click.IntRange(1, 10_000))
@pass_phone
def remove(phone: Phone, code: str, qty: int) -> None:
    """Put goods back: take pieces of CODE out of the list (a weighed line goes whole)."""
    basket = phone.remove(code, qty)
    click.echo(f"removed; total {_money(basket.total, basket.currency)}")


@phone_group.command("list")
@pass_phone
def show_list(phone: Phone) -> None:
    """Show the list of the visit in progress, with the running total against the hold."""
    visit = phone.visit()
    if visit is None:
        raise click.ClickException("no hold yet: run `selfcheckout phone hold --estimate AMOUNT` first")
    _echo_visit(visit)


@phone_group.command()
@click.option("--yes", is_flag=True, help="Sign without asking.")
@pass_phone
def confirm(phone: Phone, yes: bool) -> None:
    """Show the list and sign it with your key (claim 2); it is then ready for the gate."""
    _confirm_and_sign(phone, yes)


@phone_group.command()
@click.option(
    "--host", default=VPCD_HOST, show_default=True, help="The vpcd host the virtual phone connects to."
)
@click.option(
    "--port", default=VPCD_PORT, show_default=True, type=int, help="vpcd's port (35963 = reader 00 00)."
)
@click.option("--timeout", "timeout_s", default=30.0, show_default=True, help="Seconds to wait for the gate.")
@pass_phone
def tap(phone: Phone, host: str, port: int, timeout_s: float) -> None:
    """Hold the phone on the gate's reader (vpcd), present the signed list, and take the verified receipt."""
    click.echo(f"phone on the reader at {host}:{port}; waiting for the gate ...")
    phone.tap(host=host, port=port, timeout_s=timeout_s)
    visit = phone.visit()
    assert visit is not None and visit.receipt is not None
    _echo_receipt(visit.receipt.doc, visit.receipt.kid)


@phone_group.command()
@click.option(
    "--host", default=VPCD_HOST, show_default=True, help="The vpcd host the virtual phone connects to."
)
@click.option(
    "--port", default=VPCD_PORT, show_default=True, type=int, help="vpcd's port (35963 = reader 00 00)."
)
@click.option("--yes", is_flag=True, help="Sign the kiosk's list without asking.")
@click.option(
    "--timeout", "timeout_s", default=30.0, show_default=True, help="Seconds to wait for the kiosk."
)
@pass_phone
def kiosk(phone: Phone, host: str, port: int, yes: bool, timeout_s: float) -> None:
    """Tap the phone on a kiosk's reader (vpcd): show it the hold, or sign the list it proposes.

    The first tap shows the kiosk the hold; the finishing tap shows the kiosk's list here, line by line
    with the names of the phone's own catalog, and signs it with your key once you say yes.
    """

    def decide(proposal: ProposedList, lines: list[Line]) -> bool:
        click.echo(f"the kiosk {proposal.kiosk} proposes this list:")
        for line in lines:
            text = _line_text(line.name, line.qty, line.unit_price, line.grams, line.total, proposal.currency)
            click.echo(f"  {text}")
        click.echo(f"  total {_money(proposal.total, proposal.currency)}")
        return yes or click.confirm("Sign this list with your key?", default=False)

    click.echo(f"phone on the reader at {host}:{port}; waiting for the kiosk ...")
    tapped = tap_kiosk(
        phone.kiosk_card(), phone.kiosk_lines, decide, host=host, port=port, timeout_s=timeout_s
    )
    if tapped.outcome == "hold":
        click.echo("the kiosk read your hold: scan your goods there, then tap again to finish")
    elif tapped.outcome == "refused":
        click.echo(f"the kiosk's list was refused: {messages.kiosk_refusal_text(tapped.reason or '')}")
    elif tapped.outcome == "declined":
        click.echo("not signed; the kiosk was told: change the list there and tap again")
    else:
        assert tapped.signed is not None
        click.echo(
            f"list {tapped.signed.doc.list.hex()} signed with key {tapped.signed.kid}: "
            "tap the phone at the exit gate"
        )


@phone_group.command()
@pass_phone
def receipt(phone: Phone) -> None:
    """Show the gate's signed exit receipt of this visit: the legality result (claim 1 step 3)."""
    visit = phone.visit()
    if visit is None or visit.receipt is None:
        raise click.ClickException("no exit receipt yet: tap the phone at the gate first")
    _echo_receipt(visit.receipt.doc, visit.receipt.kid)


@phone_group.command()
@click.option("--list", "list_hex", help="The list id (hex) of an earlier exit; the last exit by default.")
@click.option(
    "--wait", "wait_s", default=0.0, show_default=True, help="Seconds to keep asking until settled."
)
@pass_phone
def notice(phone: Phone, list_hex: str | None, wait_s: float) -> None:
    """Fetch and verify the deduction notice: what was charged, and from where (claim 1 step 4)."""
    try:
        list_id = bytes.fromhex(list_hex) if list_hex else None
    except ValueError as exc:
        raise click.BadParameter("a list id is 32 hex digits", param_hint="--list") from exc
    deadline = time.monotonic() + wait_s
    while (found := phone.fetch_notice(list_id)) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if found is None:
        raise click.ClickException("the payment system has not settled this exit yet; ask again later")
    _echo_notice(found)


@phone_group.command()
@pass_phone
def status(phone: Phone) -> None:
    """Show the key, the store this phone is enrolled with, and the visit in progress."""
    click.echo(f"state {phone.state.path}, shopper key {phone.key_id}")
    profile = phone.profile
    click.echo(
        f"{profile.shopper} at store {profile.store} ({profile.currency}), payment system {profile.ps_url}"
    )
    visit = phone.visit()
    if visit is None:
        click.echo("no visit in progress")
        return
    _echo_visit(visit)
    if visit.receipt is not None:
        click.echo(f"exit receipt: {visit.receipt.doc.verdict}")
    if visit.notice is not None:
        click.echo(f"deduction notice: {_money(visit.notice.doc.total, visit.notice.doc.currency)} charged")


# -- what the screens show --------------------------------------------------------------------------------


def _confirm_and_sign(phone: Phone, yes: bool) -> None:
    _echo_visit(phone.ready_to_sign())
    if not yes and not click.confirm("Sign this list with your key?", default=False):
        raise click.ClickException("not signed; the list is kept: `selfcheckout phone confirm` when ready")
    signed = phone.confirm()
    click.echo(f"list {signed.doc.list.hex()} signed with key {signed.kid}: tap the phone at the exit gate")


def _echo_visit(visit: Visit) -> None:
    voucher = visit.voucher.doc
    basket: Basket = visit.basket
    currency = voucher.currency
    for line in basket.lines:
        click.echo(f"  {_line_text(line.name, line.qty, line.unit_price, line.grams, line.total, currency)}")
    left = voucher.amount - basket.total
    state = "left" if left >= 0 else "OVER"
    click.echo(
        f"  {len(basket.lines)} line(s), total {_money(basket.total, currency)} of your "
        f"{_money(voucher.amount, currency)} hold ({_money(abs(left), currency)} {state})"
    )
    if visit.signed_list is not None:
        click.echo(f"  signed as list {visit.signed_list.doc.list.hex()}")


def _line_text(name: str, qty: int, unit_price: int, grams: int | None, total: int, currency: str) -> str:
    if grams is not None:
        what = f"{name}, {grams} g at {_money(unit_price, currency)}/kg"
    else:
        what = f"{qty} x {name} at {_money(unit_price, currency)}"
    return f"{what}: {_money(total, currency)}"


def _echo_receipt(r: ExitReceipt, kid: str) -> None:
    click.echo(f"exit receipt from gate {r.gate} of store {r.store}, signature verified (key {kid})")
    click.echo(f"verdict: {r.verdict.upper()} - {messages.verdict_text(r.verdict)}")
    click.echo(f"  list {r.list.hex()}, total {_money(r.total, r.currency)}, at {_when(r.at)}")
    for code in r.reasons:
        click.echo(f"  - {code}: {messages.reason_text(code)}")


def _echo_notice(n: DeductionNotice) -> None:
    c = n.currency
    click.echo(f"deduction notice for list {n.charge.hex()}, signature of the payment system verified")
    click.echo(f"  charged        {_money(n.total, c)}")
    click.echo(f"  stored value   {_money(n.stored_value, c)}")
    click.echo(
        f"  bank           {_money(n.bank, c)}" + (f" (bank reference {n.bank_ref})" if n.bank_ref else "")
    )
    if n.debt:
        click.echo(f"  still owed     {_money(n.debt, c)} (top up to pay it; new holds wait until then)")
    click.echo(f"  released       {_money(n.released, c)} of the hold {n.hold.hex()}")
    click.echo(f"  settled at     {_when(n.settled)}")


def _echo_gates(gates: dict[str, Any]) -> None:
    if gates:
        click.echo(f"pinned gate key(s) of {', '.join(sorted(gates))}")
    else:
        click.echo(
            "no gate keys published to this phone: exit receipts cannot be verified "
            "until `phone sync` finds some"
        )


def _money(minor: int, currency: str) -> str:
    return format_amount(minor, currency)


def _when(unix: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))
