"""GTINs (EAN-8, UPC-A, EAN-13, GTIN-14): the check digit (GS1 General Specifications, 7.9.1) and one spelling of
every length, so a catalogue's 12-digit UPC and a barcode read as 13-digit EAN meet as the same number."""
from __future__ import annotations

#: The lengths GS1 gives a GTIN.
GTIN_LENGTHS = (8, 12, 13, 14)


def check_digit(body: str) -> int:
    """The GS1 check digit of the digits before it: weights 3 and 1 alternate from the rightmost digit."""
    total = sum(int(digit) * (3 if position % 2 == 0 else 1) for position, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def gtin_problem(text: str) -> str | None:
    """Why ``text`` is not a GTIN (digits, one of GTIN_LENGTHS, a right check digit), or None when it is one."""
    if not text.isdigit() or not text.isascii():
        return f"gtin {text!r} is not all digits"
    if len(text) not in GTIN_LENGTHS:
        return f"gtin {text!r} has {len(text)} digits, not 8, 12, 13 or 14"
    expected = check_digit(text[:-1])
    if int(text[-1]) != expected:
        return f"gtin {text!r} has check digit {text[-1]}, expected {expected}"
    return None


def normal_gtin(text: str) -> str:
    """The 14-digit spelling (zeros in front), the key catalogue GTINs and read barcodes are matched by; ValueError
    when ``text`` is not a GTIN."""
    problem = gtin_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text.zfill(14)
