"""TSIG-signed zone transfers from a real Knot that allows AXFR only with its key.

The zone stands in for .ch, whose registry publishes its zone on a transfer server with a
public key: the profile names the server, ``--tsig`` (or the profile) gives the key.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crawler.cli import cli
from crawler.db import open_census, start_run
from crawler.errors import TransferError
from crawler.lab.knot import Knot, free_port, knot_available
from crawler.probe.axfr import drain, spool_messages, store_spool
from crawler.probe.tsig import TsigKey, TsigSpecError, Verifier
from crawler.profiles import load_profile

KEY = "zonedata-ch-test:hmac-sha512:" + base64.b64encode(b"right secret" * 4).decode()
WRONG = "zonedata-ch-test:hmac-sha512:" + base64.b64encode(b"wrong secret" * 4).decode()
ADDRESS = "127.0.0.2"
ZONE = (
    "$ORIGIN ch.\n$TTL 3600\n@ SOA ns1.nic.ch. hostmaster.nic.ch. 2026120401 3600 600 86400 3600\n"
    "@ NS ns1.nic.ch.\nns1.nic A 127.0.0.2\n"
    + "".join(f"d{i:02d} NS ns1.nic.ch.\n" for i in range(20))
    # long TXT records, so the transfer takes several messages, each signed
    + "".join(f'n{i:03d}.notes TXT "{"x" * 250}"\n' for i in range(600))
)
PROFILE = f"""
zone = "ch"
[transfer]
servers = ["{ADDRESS}"]
source = "the test's Knot"
"""


def test_a_key_is_name_algorithm_secret() -> None:
    key = TsigKey.parse(KEY)
    assert (key.name, key.algorithm) == ("zonedata-ch-test", "hmac-sha512")
    assert key.secret not in repr(key) and key.secret not in str(key)
    for bad in ("justaname", "name:hmac-sha512", "name:rot13:c2VjcmV0", "name:hmac-sha256:*!"):
        with pytest.raises(TsigSpecError):
            TsigKey.parse(bad)


def test_embedded_profiles_of_zones_published_by_transfer() -> None:
    for zone, server in (("se", "zonedata.iis.se"), ("nu", "zonedata.iis.se"),
                         ("ch", "zonedata.switch.ch"), ("li", "zonedata.switch.ch"),
                         ("ee", "zone.internet.ee")):
        profile = load_profile(zone)
        assert profile.transfer.servers == (server,)
        assert profile.transfer.source.startswith("https://")
    assert TsigKey.parse(load_profile("ch").transfer.tsig or "").name.startswith("tsig-zonedata")
    assert load_profile("se").transfer.tsig is None
    assert "org.se" in load_profile("se").suffix_set.suffixes


def interrupt_probe(db: Any) -> None:
    """The run as a kill during its first probe phase leaves it."""
    with db.conn:
        db.execute("UPDATE runs SET status = 'interrupted', stage = 'probe'")
        db.execute("DELETE FROM run_stages")
        db.execute("DELETE FROM probe_phases")
    db.close()


@pytest.mark.knot
@pytest.mark.skipif(not knot_available(), reason="no knotd")
class TestKnotWithKey:
    @pytest.fixture(scope="class")
    def knot(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
        port = free_port((ADDRESS,))
        with Knot(tmp_path_factory.mktemp("knot-tsig"), ADDRESS, port, {"ch": ZONE}, tsig=KEY):
            yield port

    def census(self, tmp_path: Path, port: int, *extra: str, profile: str = PROFILE):
        path = tmp_path / "ch.toml"
        path.write_text(profile)
        db = tmp_path / "census.db"
        result = CliRunner().invoke(cli, [
            "-q", "probe", "ch", "--profile", str(path), "--db", str(db),
            "--resolver", f"{ADDRESS}:{port}", "--ns-port", str(port), "--no-seeds",
            "--no-wordlist", "--allow-net", "127.0.0.0/8", "--timeout", "0.5", "--qps", "5000",
            *extra,
        ])
        return result, open_census(db)

    def test_the_right_key_transfers_the_zone(self, tmp_path: Path, knot: int) -> None:
        result, db = self.census(tmp_path, knot, "--tsig", KEY)
        assert result.exit_code == 0, result.output
        attempt = next(db["axfr_attempts"].rows_where("ns_name = ?", [ADDRESS]))
        assert (attempt["outcome"], attempt["records"]) == ("success", 623), attempt
        assert {f"d{i:02d}.ch" for i in range(20)} <= {r["name"] for r in db["domains"].rows}
        options = db.execute("SELECT options FROM runs").fetchone()[0]
        assert "zonedata-ch-test:hmac-sha512" in options
        assert TsigKey.parse(KEY).secret not in options, "the secret is not written down"

    def test_a_resumed_probe_asks_for_the_key_again_unless_the_profile_has_it(
        self, tmp_path: Path, knot: int
    ) -> None:
        """The secret is not stored: a probe resumed without ``--tsig`` would transfer
        nothing, so it is refused in one line (the run stays resumable); the profile's own
        key is read from the profile again."""
        path = tmp_path / "census.db"
        _, db = self.census(tmp_path, knot, "--tsig", KEY)
        interrupt_probe(db)
        resume = ["-q", "run", "--resume", "--db", str(path), "--allow-net", "127.0.0.0/8"]
        refused = CliRunner().invoke(cli, resume)
        assert refused.exit_code != 0
        assert refused.output.strip().splitlines() == [
            "Error: run 1 was interrupted during its probe and transfers with the TSIG key "
            "zonedata-ch-test:hmac-sha512, whose secret is not stored: resume it with census "
            "run --resume --tsig zonedata-ch-test:hmac-sha512:SECRET"]
        wrong_name = CliRunner().invoke(cli, [*resume, "--tsig", "other:hmac-sha512:" + "a" * 8])
        assert "transferred with the TSIG key zonedata-ch-test:hmac-sha512, not other" in (
            wrong_name.output)
        assert open_census(path).execute("SELECT status FROM runs").fetchone()[0] == (
            "interrupted")
        resumed = CliRunner().invoke(cli, [*resume, "--tsig", KEY])
        assert resumed.exit_code == 0, resumed.output
        db = open_census(path)
        assert [(a["outcome"], a["records"]) for a in db["axfr_attempts"].rows_where(
            "ns_name = ?", [ADDRESS])] == [("success", 623)]

        keyed = tmp_path / "keyed"
        keyed.mkdir()
        key = TsigKey.parse(KEY)
        _, db = self.census(keyed, knot, profile=PROFILE + (
            f'[transfer.tsig]\nname = "{key.name}"\nalgorithm = "hmac-sha512"\n'
            f'secret = "{KEY.rpartition(":")[2]}"\n'))
        interrupt_probe(db)
        resumed = CliRunner().invoke(cli, [*resume[:3], "--db", str(keyed / "census.db"),
                                           "--allow-net", "127.0.0.0/8"])
        assert resumed.exit_code == 0, resumed.output
        db = open_census(keyed / "census.db")
        assert [(a["outcome"], a["records"]) for a in db["axfr_attempts"].rows_where(
            "ns_name = ?", [ADDRESS])] == [("success", 623)]

    def test_a_wrong_key_is_one_clear_line(self, tmp_path: Path, knot: int) -> None:
        result, db = self.census(tmp_path, knot, "--tsig", WRONG)
        line = "the server rejected TSIG key zonedata-ch-test (BADSIG: wrong secret or algorithm)"
        assert line in result.output
        attempt = next(db["axfr_attempts"].rows_where("ns_name = ?", [ADDRESS]))
        assert (attempt["outcome"], attempt["error"]) == ("refused", line)
        assert db["dns_records"].count_where("source LIKE 'axfr:%'") == 0

    def test_no_key_is_refused(self, tmp_path: Path, knot: int) -> None:
        _, db = self.census(tmp_path, knot)
        assert {r["outcome"] for r in db["axfr_attempts"].rows} == {"refused"}

    def test_a_malformed_key_stops_before_the_run(self, tmp_path: Path, knot: int) -> None:
        result, db = self.census(tmp_path, knot, "--tsig", "zonedata-ch-test:hmac-sha512")
        assert result.exit_code != 0
        assert "expected NAME:ALG:SECRET" in result.output
        assert db["runs"].count == 0

    def test_a_tampered_answer_fails_its_signature(self, tmp_path: Path, knot: int) -> None:
        key = TsigKey.parse(KEY)
        with tempfile.TemporaryFile() as spool:
            drained = asyncio.run(drain(ADDRESS, knot, "ch", spool, timeout=2, total=10,
                                        tsig=key))
            assert drained.outcome is None and drained.messages > 1
            spool.seek(0)
            messages = list(spool_messages(spool))
        db = open_census(tmp_path / "t.db")
        run_id = start_run(db, "ch", {})
        tampered = bytearray(messages[1])
        at = bytes(tampered).index(b"xxxxx")
        tampered[at] = ord("y")
        for wire, fails in ((messages, None), ([messages[0], bytes(tampered), *messages[2:]],
                                                "answer 2 fails TSIG key zonedata-ch-test")):
            with tempfile.TemporaryFile() as spool:
                for message in wire:
                    spool.write(len(message).to_bytes(2, "big") + message)
                verifier = Verifier(key, drained.request_mac, "ch")
                if fails is None:
                    parser = store_spool(db, run_id, "ch", spool, "axfr", verifier=verifier)
                    assert parser.records == 623
                else:
                    with pytest.raises(TransferError, match=fails):
                        store_spool(db, run_id, "ch", spool, "axfr2", verifier=verifier)
        assert db["dns_records"].count_where("source = 'axfr2'") == 0
