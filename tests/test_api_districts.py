"""The districts API: bearer tokens, district scoping, JSON errors, OpenAPI."""


def test_requires_a_bearer_token(client, two_districts):
    response = client.get("/api/v1/districts")
    assert response.status_code == 401
    assert response.is_json and response.json["message"]


def test_forged_token_is_refused(client, two_districts):
    response = client.get("/api/v1/districts", headers={"Authorization": "Bearer egov_forged"})
    assert response.status_code == 401


def test_admin_sees_every_district(client, two_districts, make_user, make_token):
    admin = make_user("admin@lrabb.de", role="admin", districts=())
    response = client.get("/api/v1/districts", headers=make_token(admin))
    assert response.status_code == 200
    assert [d["key"] for d in response.json] == ["08115", "08116"]
    assert response.json[0] == {"key": "08115", "name": "Böblingen", "kind": "Landkreis", "municipality_count": 2}


def test_coordinator_sees_only_own_district(client, two_districts, make_user, make_token):
    headers = make_token(make_user())
    assert [d["key"] for d in client.get("/api/v1/districts", headers=headers).json] == ["08115"]
    own = client.get("/api/v1/districts/08115/municipalities", headers=headers)
    assert own.status_code == 200
    assert [m["ags"] for m in own.json] == ["08115003", "08115045"]
    other = client.get("/api/v1/districts/08116/municipalities", headers=headers)
    assert other.status_code == 404
    assert other.is_json and other.json["message"]


def test_unknown_api_route_answers_json(client, two_districts, make_user, make_token):
    response = client.get("/api/v1/nothing-here", headers=make_token(make_user()))
    assert response.status_code == 404 and response.is_json


def test_session_cookie_does_not_authenticate_the_api(client, two_districts, make_user):
    # The API takes bearer tokens only; a browser session must not be enough.
    response = client.get("/api/v1/districts", headers={"Cookie": "session=anything"})
    assert response.status_code == 401


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json
    validate(document)
    assert document["openapi"].startswith("3.")
    assert "/api/v1/districts/{key}/municipalities" in document["paths"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_real_directory_admin_sees_44_coordinator_only_08115(client, runner, shared_data, make_user, make_token):
    result = runner.invoke(
        args=[
            "directory", "import",
            "--districts", str(shared_data / "bw_districts.csv"),
            "--municipalities", str(shared_data / "bw_municipalities.csv"),
        ]
    )
    assert result.exit_code == 0, result.output
    admin = make_token(make_user("admin@lrabb.de", role="admin", districts=()))
    coordinator = make_token(make_user("koordination@lrabb.de", role="coordinator", districts=("08115",)))

    everything = client.get("/api/v1/districts", headers=admin).json
    assert len(everything) == 44
    assert sum(d["municipality_count"] for d in everything) == 1101

    assert [d["key"] for d in client.get("/api/v1/districts", headers=coordinator).json] == ["08115"]
    assert client.get("/api/v1/districts/08115/municipalities", headers=coordinator).status_code == 200
    assert client.get("/api/v1/districts/08116/municipalities", headers=coordinator).status_code == 404
    assert len(client.get("/api/v1/districts/08116/municipalities", headers=admin).json) > 0


def test_statewide_viewer_reads_every_district(client, two_districts, make_user, make_token):
    viewer = make_token(make_user("lagebild@im.bwl.de", role="viewer", districts=()))
    assert len(client.get("/api/v1/districts", headers=viewer).json) == 2


def test_token_use_is_recorded_at_most_once_a_minute(client, two_districts, make_user, make_token):
    from datetime import timedelta

    from sqlalchemy import select

    from accounts.models import ApiToken
    from core.extensions import db

    headers = make_token(make_user())
    client.get("/api/v1/districts", headers=headers)
    first = db.session.execute(select(ApiToken.last_used_at)).scalar_one()
    client.get("/api/v1/districts", headers=headers)
    assert db.session.execute(select(ApiToken.last_used_at)).scalar_one() == first  # no write per call

    db.session.execute(db.update(ApiToken).values(last_used_at=first - timedelta(minutes=2)))
    db.session.commit()
    client.get("/api/v1/districts", headers=headers)
    assert db.session.execute(select(ApiToken.last_used_at)).scalar_one() > first - timedelta(minutes=2)
