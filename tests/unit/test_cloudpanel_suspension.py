"""The state read of the CloudPanel playbooks: the suspension's server block it calls for.

The read is constant Python inside each playbook (``vars.read_state``); these tests run it as the
playbooks do, with the paths as arguments, against vhosts shaped like CloudPanel's templates
(github.com/cloudpanel-io/vhost-templates, v2/Generic/Generic and the v2-http3 ones).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks" / "cloudpanel"
USING_THE_READ = ("create", "suspend", "unsuspend", "terminate", "change_password")


def read_state_code(action: str = "suspend") -> str:
    return yaml.safe_load((PLAYBOOKS / f"{action}.yml").read_text())[0]["vars"]["read_state"]


def vhost_text(names: str = "www.shop.example.com", listen_https: str = "443 ssl http2") -> str:
    return (f"server {{\n  listen 80;\n  listen [::]:80;\n  listen {listen_https};\n"
            f"  ssl_certificate_key /etc/nginx/ssl-certificates/www.shop.example.com.key;\n"
            f"  ssl_certificate /etc/nginx/ssl-certificates/www.shop.example.com.crt;\n"
            f"  server_name {names};\n  root /home/shop/htdocs/www.shop.example.com;\n"
            f"  location ~ /.well-known {{\n    allow all;\n  }}\n}}\n")


@pytest.fixture
def server(tmp_path):
    (tmp_path / "home" / "shop" / "htdocs" / "www.shop.example.com").mkdir(parents=True)
    (tmp_path / "sites-enabled").mkdir()
    paths = {"vhost": tmp_path / "sites-enabled" / "www.shop.example.com.conf",
             "saved": tmp_path / "provisiond-suspended" / "www.shop.example.com.conf",
             "block": tmp_path / "sites-enabled" / "+provisiond-suspended-www.shop.example.com.conf"}

    def read() -> dict:
        argv = [str(tmp_path / "home" / "shop"), str(tmp_path / "home" / "shop" / "htdocs" / "www.shop.example.com"),
                str(paths["vhost"]), str(paths["saved"]), str(paths["block"]), "www.shop.example.com"]
        result = subprocess.run([sys.executable, "-c", read_state_code(), *argv], capture_output=True,
                                text=True, check=True)
        return json.loads(result.stdout)

    return paths, read


def test_every_cloudpanel_playbook_reads_the_state_the_same_way():
    assert len({read_state_code(action) for action in USING_THE_READ}) == 1


def test_the_block_answers_503_for_the_site_names_on_its_listen_and_certificate(server):
    paths, read = server
    paths["vhost"].write_text(vhost_text("www.shop.example.com shop.example.com"))
    block = read()["wanted_block"]
    assert block.startswith("# provisiond: suspended www.shop.example.com.")
    for line in ("listen 80;", "listen [::]:80;", "listen 443 ssl http2;",
                 "server_name www.shop.example.com shop.example.com;", "ssl_certificate /etc/nginx/ssl-certificates/www.shop.example.com.crt;", "return 503 "):
        assert line in block
    # Let's Encrypt renewals still reach the site's webroot while it is suspended.
    assert "location ^~ /.well-known/acme-challenge/ {\n    root /home/shop/htdocs/www.shop.example.com;" in block


def test_a_regenerated_vhost_with_the_same_names_keeps_the_block_current(server):
    paths, read = server
    paths["vhost"].write_text(vhost_text())
    paths["block"].write_text(read()["wanted_block"])
    paths["vhost"].write_text("# certificate renewed\n" + vhost_text())   # CloudPanel wrote it again
    state = read()
    assert state["suspended"] and state["block_current"]


def test_a_name_added_in_the_panel_makes_the_block_stale_so_suspend_writes_it_again(server):
    paths, read = server
    paths["vhost"].write_text(vhost_text())
    paths["block"].write_text(read()["wanted_block"])
    paths["vhost"].write_text(vhost_text("www.shop.example.com shop.example.com"))
    state = read()
    assert state["suspended"] and not state["block_current"]
    assert "server_name www.shop.example.com shop.example.com;" in state["wanted_block"]


def test_listen_options_nginx_allows_once_per_address_are_left_to_the_site(server):
    paths, read = server
    paths["vhost"].write_text(vhost_text(listen_https="443 quic reuseport default_server"))
    block = read()["wanted_block"]
    assert "listen 443 quic;" in block and "reuseport" not in block and "default_server" not in block


def test_a_site_suspended_by_the_former_swap_reads_as_suspended_with_its_kept_vhost(server):
    paths, read = server
    paths["saved"].parent.mkdir()
    paths["saved"].write_text(vhost_text("www.shop.example.com shop.example.com"))
    paths["vhost"].write_text("# provisiond: suspended. kept aside\nserver {\n  server_name www.shop.example.com;\n}\n")
    state = read()
    assert state["suspended"] and state["legacy"] and state["saved"] and not state["block"]
    assert "server_name www.shop.example.com shop.example.com;" in state["wanted_block"]
