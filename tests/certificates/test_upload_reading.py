"""The upload sandbox's faster reading: the same answers as the libraries' own code."""

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic

from portal.pdf import upload

upload._install_speed_ups()
ORIGINAL = generic.read_hex_string_from_stream.keywords["_original"]

#: Hex digits, PDF white space, and what a hostile or damaged string may hold instead.
PIECES = st.sampled_from(
    [
        b"0",
        b"7",
        b"a",
        b"F",
        b"e9",
        b" ",
        b"\n",
        b"\r\n",
        b"\t",
        b"\x00",
        b"\x0c",
        b"%",
        b"%c\n",
        b"g",
        b"<",
        b")",
    ]
)


def read(reader, data: bytes):
    """(what ``reader`` answers or raises, where it leaves the stream)."""
    stream = io.BytesIO(data)
    try:
        found = reader(stream)
        answer = (type(found).__name__, bytes(found) if isinstance(found, bytes) else str(found))
    except Exception as exc:  # compared: the same kind of error, or the same answer
        answer = ("error", type(exc).__name__)
    return answer, stream.tell()


@settings(max_examples=400, deadline=None)
@given(
    body=st.lists(PIECES, max_size=40).map(b"".join),
    closed=st.booleans(),
    after=st.sampled_from([b"", b" /Type /Sig >>", b">>", b"0 obj"]),
)
def test_hex_strings_are_read_as_pyhanko_reads_them(body, closed, after):
    data = b"<" + body + (b">" if closed else b"") + after
    assert read(generic.read_hex_string_from_stream, data) == read(ORIGINAL, data)


def test_a_signature_sized_hex_string_and_a_long_one_across_slices():
    for digits in (b"30820a" + b"0" * 24_570, b"ab" * 70_000 + b"c"):
        data = b"<" + digits + b">\n/ByteRange [0 1 2 3]"
        answer, position = read(generic.read_hex_string_from_stream, data)
        assert (answer, position) == read(ORIGINAL, data)
        assert position == len(digits) + 2


def test_the_helper_warms_up_on_a_pdf_it_signed_itself():
    """The warm-up goes the whole way a certificate's check goes: its signature is found,
    validated and trusted (else the children would start cold)."""
    found = upload._warm_up()
    assert found is not None and found.pages == 1
    assert (found.seal.signed, found.seal.intact, found.seal.whole_file, found.seal.trusted) == (True,) * 4
