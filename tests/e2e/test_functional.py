"""Every endpoint of the example backend, over HTTP, with writes checked in the database."""
from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from .conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def scalar(db, sql: str, **params):
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def rows(db, sql: str, **params):
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]


def make_user(http, name="Grace") -> dict:
    r = http.post("/users", json={"email": f"{uniq(name.lower())}@example.com", "name": name})
    assert r.status_code == 201, r.text
    return r.json()


def make_category(http) -> dict:
    r = http.post("/categories", json={"name": uniq("cat"), "description": "e2e"})
    assert r.status_code == 201, r.text
    return r.json()


def make_product(http, category_id=None, price=1000, stock=50, name=None) -> dict:
    payload = {
        "sku": uniq("SKU"),
        "name": name or uniq("Widget"),
        "price_cents": price,
        "stock": stock,
        "category_id": category_id,
    }
    r = http.post("/products", json=payload)
    assert r.status_code == 201, r.text
    return r.json()


def make_order(http, user_id, lines, note=None):
    return http.post(
        "/orders",
        json={
            "user_id": user_id,
            "note": note,
            "items": [{"product_id": pid, "quantity": q} for pid, q in lines],
        },
    )


# ------------------------------------------------------------------------- health


def test_health_endpoints(http, server):
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/health/db").json() == {"status": "ok"}
    pool = http.get("/health/pool")
    assert pool.status_code == 200
    body = pool.json()
    if server.db_kind == "postgres":
        assert body["dialect"] == "postgresql"
        assert {"size", "checked_out", "available", "overflow"} <= body.keys()
        assert body["size"] >= 1 and body["available"] <= body["size"]
    else:
        assert body["dialect"] == "sqlite"
    version = http.get("/health/version").json()
    assert version["version"] and version["revision"]


# -------------------------------------------------------------------------- users


def test_user_crud(http, db):
    email = f"{uniq('ada')}@Example.com"
    r = http.post("/users", json={"email": email, "name": "Ada"})
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["email"] == email.lower() and user["is_active"] is True
    assert rows(db, "SELECT email, name, is_active FROM users WHERE id = :i", i=user["id"]) == [
        (email.lower(), "Ada", True)
    ]
    assert http.post("/users", json={"email": email.upper(), "name": "Ada 2"}).status_code == 409

    got = http.get(f"/users/{user['id']}").json()
    assert got["email"] == email.lower() and got["orders"] == []

    r = http.patch(f"/users/{user['id']}", json={"name": "Ada Lovelace"})
    assert r.status_code == 200 and r.json()["name"] == "Ada Lovelace"
    assert scalar(db, "SELECT name FROM users WHERE id = :i", i=user["id"]) == "Ada Lovelace"
    assert http.get(f"/users/{user['id']}").json()["name"] == "Ada Lovelace"

    found = http.get("/users/search", params={"q": "Lovelace"}).json()
    assert user["id"] in [u["id"] for u in found]

    me = http.get("/users/me", headers={"X-User-Id": str(user["id"])})
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    assert http.get("/users/me").status_code == 401
    assert http.get("/users/me", headers={"X-User-Id": "999999"}).status_code == 401

    assert http.get("/users/999999").status_code == 404
    assert http.patch("/users/999999", json={"name": "x"}).status_code == 404

    r = http.delete(f"/users/{user['id']}")
    assert r.status_code == 204
    assert scalar(db, "SELECT count(*) FROM users WHERE id = :i", i=user["id"]) == 0
    assert http.get(f"/users/{user['id']}").status_code == 404
    assert http.delete(f"/users/{user['id']}").status_code == 404


def test_user_list_pagination(http, db):
    created = [make_user(http, name=f"Page{i}") for i in range(5)]
    total = scalar(db, "SELECT count(*) FROM users")
    assert total >= 5
    ids_in_db = [r[0] for r in rows(db, "SELECT id FROM users ORDER BY id")]
    seen = []
    page = 1
    while True:
        batch = http.get("/users", params={"page": page, "page_size": 2}).json()
        assert len(batch) <= 2
        if not batch:
            break
        seen.extend(u["id"] for u in batch)
        page += 1
        assert page < 1000
    assert seen == ids_in_db
    assert {u["id"] for u in created} <= set(seen)
    assert http.get("/users", params={"page": 0}).status_code == 422


# ---------------------------------------------------------------------- catalogue


def test_categories_and_products(http, db):
    cat = make_category(http)
    assert http.post("/categories", json={"name": cat["name"]}).status_code == 409
    assert cat["name"] in [c["name"] for c in http.get("/categories").json()]
    assert scalar(db, "SELECT description FROM categories WHERE id = :i", i=cat["id"]) == "e2e"

    product = make_product(http, category_id=cat["id"], price=1999, stock=12)
    assert rows(
        db, "SELECT sku, price_cents, stock, category_id FROM products WHERE id = :i", i=product["id"]
    ) == [(product["sku"], 1999, 12, cat["id"])]
    dup = http.post(
        "/products", json={"sku": product["sku"], "name": "dup", "price_cents": 1, "stock": 1}
    )
    assert dup.status_code == 409
    bad_cat = http.post(
        "/products", json={"sku": uniq("X"), "name": "x", "price_cents": 1, "category_id": 999999}
    )
    assert bad_cat.status_code == 422

    detail = http.get(f"/products/{product['id']}").json()
    assert detail["category"] == {"id": cat["id"], "name": cat["name"], "description": "e2e"}
    assert http.get("/products/999999").status_code == 404

    r = http.patch(f"/products/{product['id']}", json={"price_cents": 2100, "name": "Renamed"})
    assert r.status_code == 200 and r.json()["price_cents"] == 2100
    assert rows(db, "SELECT name, price_cents FROM products WHERE id = :i", i=product["id"]) == [
        ("Renamed", 2100)
    ]
    assert http.patch("/products/999999", json={"stock": 1}).status_code == 404


def test_product_list_paginates_and_filters(http, db):
    cat = make_category(http)
    marker = uniq("pag")
    made = [make_product(http, category_id=cat["id"], name=f"{marker} {i}") for i in range(7)]
    pages = []
    for page in (1, 2, 3, 4):
        body = http.get(
            "/products", params={"category_id": cat["id"], "page": page, "page_size": 3}
        ).json()
        assert body["total"] == 7 and body["page"] == page and body["page_size"] == 3
        pages.append([p["id"] for p in body["items"]])
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert sum(pages, []) == [p["id"] for p in made]
    searched = http.get("/products", params={"q": marker, "page_size": 100}).json()
    assert searched["total"] == 7
    assert scalar(db, "SELECT count(*) FROM products WHERE category_id = :c", c=cat["id"]) == 7
    # total over all active products matches the database
    everything = http.get("/products", params={"page_size": 1}).json()
    assert everything["total"] == scalar(
        db, "SELECT count(*) FROM products WHERE is_active = :t", t=True
    )


def test_reprice_category_bulk_update(http, db):
    cat = make_category(http)
    a = make_product(http, category_id=cat["id"], price=1000)
    b = make_product(http, category_id=cat["id"], price=250)
    other = make_product(http, price=1000)
    r = http.post("/products/reprice", json={"category_id": cat["id"], "percent": 10})
    assert r.status_code == 200 and r.json() == {"updated": 2}
    prices = dict(rows(db, "SELECT id, price_cents FROM products WHERE category_id = :c", c=cat["id"]))
    assert prices == {a["id"]: 1100, b["id"]: 275}
    assert scalar(db, "SELECT price_cents FROM products WHERE id = :i", i=other["id"]) == 1000
    assert http.get(f"/products/{a['id']}").json()["price_cents"] == 1100
    assert http.post("/products/reprice", json={"category_id": 999999, "percent": 5}).status_code == 404


def test_low_stock_and_background_flag(http, db):
    p = make_product(http, stock=30)
    r = http.patch(f"/products/{p['id']}", json={"stock": 2})
    assert r.status_code == 200
    low = http.get("/products/low-stock", params={"threshold": 5}).json()
    assert {"id": p["id"], "sku": p["sku"], "stock": 2} in low
    # stock 0 schedules the low-stock background task, which hides the product
    assert http.patch(f"/products/{p['id']}", json={"stock": 0}).status_code == 200
    wait_for(
        lambda: scalar(db, "SELECT is_active FROM products WHERE id = :i", i=p["id"]) in (False, 0),
        timeout=15,
        what="background task to deactivate the empty product",
    )
    listed = http.get("/products", params={"q": p["name"], "page_size": 100}).json()
    assert p["id"] not in [i["id"] for i in listed["items"]]
    listed = http.get(
        "/products", params={"q": p["name"], "page_size": 100, "include_inactive": True}
    ).json()
    assert p["id"] in [i["id"] for i in listed["items"]]


def test_delete_product(http, db):
    p = make_product(http)
    assert http.delete(f"/products/{p['id']}").status_code == 204
    assert scalar(db, "SELECT count(*) FROM products WHERE id = :i", i=p["id"]) == 0
    assert http.delete(f"/products/{p['id']}").status_code == 404

    user = make_user(http)
    sold = make_product(http)
    assert make_order(http, user["id"], [(sold["id"], 1)]).status_code == 201
    assert http.delete(f"/products/{sold['id']}").status_code == 409
    assert scalar(db, "SELECT count(*) FROM products WHERE id = :i", i=sold["id"]) == 1


# ------------------------------------------------------------------------- orders


def test_order_lifecycle(http, db, server):
    user = make_user(http, name="Orderer")
    hammer = make_product(http, price=1250, stock=10)
    nails = make_product(http, price=5, stock=1000)

    r = make_order(http, user["id"], [(hammer["id"], 2), (nails["id"], 100)], note="e2e")
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["total_cents"] == 2 * 1250 + 100 * 5
    assert order["status"] == "pending" and order["note"] == "e2e"
    assert order["user"] == {"id": user["id"], "email": user["email"], "name": user["name"]}
    assert sorted((i["product"]["sku"], i["quantity"]) for i in order["items"]) == sorted(
        [(hammer["sku"], 2), (nails["sku"], 100)]
    )
    # database: order, items and reserved stock
    assert rows(db, "SELECT user_id, status, total_cents FROM orders WHERE id = :i", i=order["id"]) == [
        (user["id"], "pending", 3000)
    ]
    assert sorted(
        rows(db, "SELECT product_id, quantity, unit_price_cents FROM order_items WHERE order_id = :i", i=order["id"])
    ) == sorted([(hammer["id"], 2, 1250), (nails["id"], 100, 5)])
    assert scalar(db, "SELECT stock FROM products WHERE id = :i", i=hammer["id"]) == 8
    assert scalar(db, "SELECT stock FROM products WHERE id = :i", i=nails["id"]) == 900

    # reads
    got = http.get(f"/orders/{order['id']}").json()
    assert got["id"] == order["id"] and got["user"]["id"] == user["id"] and len(got["items"]) == 2
    items = http.get(f"/orders/{order['id']}/items").json()
    assert [i["id"] for i in items] == sorted(i["id"] for i in order["items"])
    assert items[0]["product"]["id"] in (hammer["id"], nails["id"])
    assert http.get("/orders/999999/items").status_code == 404
    assert [o["id"] for o in http.get("/orders", params={"user_id": user["id"]}).json()] == [order["id"]]
    assert [o["id"] for o in http.get(f"/users/{user['id']}/orders").json()] == [order["id"]]
    pending = http.get("/orders", params={"status": "pending", "page_size": 100}).json()
    assert order["id"] in [o["id"] for o in pending]
    detail = http.get(f"/users/{user['id']}").json()
    assert [o["id"] for o in detail["orders"]] == [order["id"]]
    stats = http.get(f"/users/{user['id']}/stats").json()
    assert stats == {
        "user_id": user["id"],
        "order_count": 1,
        "total_spent_cents": 3000,
        "last_order_id": order["id"],
    }
    report = http.get(f"/reports/users/{user['id']}").json()
    assert report["user"]["id"] == user["id"] and report["recent_order_ids"] == [order["id"]]
    assert report["stats"]["total_spent_cents"] == 3000
    assert http.get("/reports/users/999999").status_code == 404

    # errors leave stock alone
    r = make_order(http, user["id"], [(hammer["id"], 9)])
    assert r.status_code == 409
    assert make_order(http, user["id"], [(999999, 1)]).status_code == 404
    assert make_order(http, 999999, [(hammer["id"], 1)]).status_code == 404
    assert scalar(db, "SELECT stock FROM products WHERE id = :i", i=hammer["id"]) == 8
    assert scalar(db, "SELECT count(*) FROM orders WHERE user_id = :u", u=user["id"]) == 1

    # status changes
    r = http.patch(f"/orders/{order['id']}/status", json={"status": "paid"})
    assert r.status_code == 200 and r.json()["status"] == "paid"
    assert r.json()["items"] and r.json()["user"]["id"] == user["id"]
    assert scalar(db, "SELECT status FROM orders WHERE id = :i", i=order["id"]) == "paid"
    r = http.patch(f"/orders/{order['id']}/status", json={"status": "cancelled"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert scalar(db, "SELECT stock FROM products WHERE id = :i", i=hammer["id"]) == 10
    assert scalar(db, "SELECT stock FROM products WHERE id = :i", i=nails["id"]) == 1000
    assert http.get(f"/products/{hammer['id']}").json()["stock"] == 10
    assert http.patch(f"/orders/{order['id']}/status", json={"status": "paid"}).status_code == 409
    assert http.patch("/orders/999999/status", json={"status": "paid"}).status_code == 404
    assert http.get(f"/users/{user['id']}/stats").json()["order_count"] == 0

    # the async confirmation task ran and read the order's relationships
    wait_for(
        lambda: f"confirmation to {user['email']}" in server.log_text(),
        timeout=15,
        what="order confirmation background task",
    )

    # delete
    assert http.delete(f"/orders/{order['id']}").status_code == 204
    assert scalar(db, "SELECT count(*) FROM orders WHERE id = :i", i=order["id"]) == 0
    assert scalar(db, "SELECT count(*) FROM order_items WHERE order_id = :i", i=order["id"]) == 0
    assert http.get(f"/orders/{order['id']}").status_code == 404
    assert http.delete(f"/orders/{order['id']}").status_code == 404


def test_deactivate_user_cancels_pending_orders(http, db):
    user = make_user(http)
    p = make_product(http, stock=10)
    first = make_order(http, user["id"], [(p["id"], 1)]).json()
    second = make_order(http, user["id"], [(p["id"], 1)]).json()
    assert http.patch(f"/orders/{second['id']}/status", json={"status": "shipped"}).status_code == 200
    r = http.post(f"/users/{user['id']}/deactivate")
    assert r.status_code == 200 and r.json() == {"user_id": user["id"], "cancelled_orders": 1}
    assert scalar(db, "SELECT is_active FROM users WHERE id = :i", i=user["id"]) in (False, 0)
    assert dict(rows(db, "SELECT id, status FROM orders WHERE user_id = :u", u=user["id"])) == {
        first["id"]: "cancelled",
        second["id"]: "shipped",
    }
    assert http.get(f"/orders/{first['id']}").json()["status"] == "cancelled"
    assert http.get(f"/users/{user['id']}").json()["is_active"] is False
    assert make_order(http, user["id"], [(p["id"], 1)]).status_code == 404
    assert http.post("/users/999999/deactivate").status_code == 404


# ------------------------------------------------------------------------ reports


def test_reports_match_the_database(http, db, server):
    cat = make_category(http)
    u1, u2 = make_user(http, "Rep1"), make_user(http, "Rep2")
    p1 = make_product(http, category_id=cat["id"], price=300, stock=40)
    p2 = make_product(http, category_id=cat["id"], price=70, stock=40)
    assert make_order(http, u1["id"], [(p1["id"], 5), (p2["id"], 1)]).status_code == 201
    assert make_order(http, u2["id"], [(p2["id"], 3)]).status_code == 201
    cancelled = make_order(http, u2["id"], [(p1["id"], 1)]).json()
    http.patch(f"/orders/{cancelled['id']}/status", json={"status": "cancelled"})

    summary = http.get("/reports/sales-summary", params={"top": 50}).json()
    assert summary["order_count"] == scalar(db, "SELECT count(*) FROM orders WHERE status != 'cancelled'")
    assert summary["revenue_cents"] == scalar(
        db, "SELECT coalesce(sum(total_cents), 0) FROM orders WHERE status != 'cancelled'"
    )
    assert summary["by_status"] == dict(rows(db, "SELECT status, count(*) FROM orders GROUP BY status"))
    expected_top = rows(
        db,
        "SELECT p.id, p.sku, sum(i.quantity), sum(i.quantity * i.unit_price_cents) AS rev "
        "FROM products p JOIN order_items i ON i.product_id = p.id JOIN orders o ON o.id = i.order_id "
        "WHERE o.status != 'cancelled' GROUP BY p.id, p.sku ORDER BY rev DESC, p.id LIMIT 50",
    )
    assert [
        (t["product_id"], t["sku"], t["quantity"], t["revenue_cents"]) for t in summary["top_products"]
    ] == expected_top
    mine = {t["product_id"]: t for t in summary["top_products"]}
    assert mine[p1["id"]]["quantity"] == 5 and mine[p1["id"]]["revenue_cents"] == 1500
    assert mine[p2["id"]]["quantity"] == 4

    stock = {s["category"]: s for s in http.get("/reports/stock-by-category").json()}
    assert stock[cat["name"]] == {
        "category": cat["name"],
        "product_count": 2,
        "units_in_stock": (40 - 5) + (40 - 4),
    }
    assert len(stock) == scalar(db, "SELECT count(*) FROM categories")

    top = http.get("/reports/top-customers", params={"limit": 100}).json()
    expected = rows(
        db,
        "SELECT u.id, u.name, count(o.id), sum(o.total_cents) AS spent FROM users u "
        "JOIN orders o ON o.user_id = u.id WHERE o.status != 'cancelled' "
        "GROUP BY u.id, u.name ORDER BY spent DESC, u.id LIMIT 100",
    )
    assert [(t["user_id"], t["name"], t["orders"], t["spent_cents"]) for t in top] == expected
    assert {t["user_id"]: t["spent_cents"] for t in top}[u1["id"]] == 1570

    export = http.post("/reports/orders-export")
    assert export.status_code == 200, export.text
    body = export.json()
    path = Path(body["path"])
    if not path.is_absolute():
        path = server.tree / path
    with open(path, newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["order_id", "user_email", "status", "sku", "quantity", "unit_price_cents"]
    assert body["rows"] == len(lines) - 1 == scalar(db, "SELECT count(*) FROM order_items")
    assert [p1["sku"] in {row[3] for row in lines[1:]}, u1["email"] in {row[1] for row in lines[1:]}] == [
        True,
        True,
    ]
    only_cancelled = http.post("/reports/orders-export", params={"status": "cancelled"}).json()
    assert only_cancelled["rows"] == scalar(
        db,
        "SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.status = 'cancelled'",
    )


# --------------------------------------------------------------------------- sync


def test_sync_job_runs_to_completion(http, db):
    r = http.post("/sync/jobs", json={"batches": 4, "batch_size": 10, "pause": 0.05},
                  headers={"Connection": "close"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["batches"] == 4 and job["batch_size"] == 10
    assert scalar(db, "SELECT batches FROM sync_jobs WHERE id = :i", i=job["id"]) == 4

    done = wait_for(
        lambda: (lambda j: j if j["status"] in ("completed", "failed") else None)(
            http.get(f"/sync/jobs/{job['id']}").json()
        ),
        timeout=60,
        interval=0.2,
        what="sync job to finish",
    )
    assert done["status"] == "completed", done
    assert done["batches_done"] == 4 and done["rows_written"] == 40 and done["error"] is None
    assert done["started_at"] and done["finished_at"]
    prefix = f"SUP{job['id']:04d}-%"
    assert scalar(db, "SELECT count(*) FROM products WHERE sku LIKE :p", p=prefix) == 40
    assert scalar(
        db, "SELECT count(DISTINCT category_id) FROM products WHERE sku LIKE :p", p=prefix
    ) == 4
    assert rows(db, "SELECT status, rows_written FROM sync_jobs WHERE id = :i", i=job["id"]) == [
        ("completed", 40)
    ]
    assert job["id"] in [j["id"] for j in http.get("/sync/jobs").json()]
    assert http.get("/sync/jobs/999999").status_code == 404

    purged = http.delete("/sync/jobs/finished").json()
    assert purged["deleted"] >= 1
    assert scalar(db, "SELECT count(*) FROM sync_jobs WHERE id = :i", i=job["id"]) == 0
    assert http.get(f"/sync/jobs/{job['id']}").status_code == 404
    assert scalar(db, "SELECT count(*) FROM products WHERE sku LIKE :p", p=prefix) == 40
