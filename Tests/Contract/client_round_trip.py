"""Uses a Python client generated from Herald's served OpenAPI document against a running
API, as a tenant's developer would: the types the document declares are the types that
come back. Run by ContractTests with the generated package on PYTHONPATH.

Environment: HERALD_BASE_URL, HERALD_OPERATOR_TOKEN, HERALD_RECEIVER_URL."""
import os
import sys
import time
import uuid

from herald_client import AuthenticatedClient
from herald_client.api.default import (create_endpoint, create_key, create_tenant, get_delivery, get_endpoint,
                                       list_deliveries, list_tenants, publish_event, test_endpoint)
from herald_client.models import (CreateEndpointBody, CreateKeyBody, CreateTenantBody, DeliveryDetail, DeliveryPage,
                                  Endpoint, Key, Problem, PublishEventBody, PublishEventBodyData, Tenant,
                                  TestEndpointBody)

base = os.environ["HERALD_BASE_URL"]
calls = 0


def check(condition, what):
    if not condition:
        print(f"client round trip: {what}", file=sys.stderr)
        sys.exit(1)


def call(module, **arguments):
    global calls
    calls += 1
    return module.sync(**arguments)


operator = AuthenticatedClient(base_url=base, token=os.environ["HERALD_OPERATOR_TOKEN"], raise_on_unexpected_status=True)
tenant = call(create_tenant, client=operator, body=CreateTenantBody(name="Generated Client Studio"))
check(isinstance(tenant, Tenant), f"create_tenant gave {tenant!r}")
tenants = call(list_tenants, client=operator)
check(any(item.id == tenant.id for item in tenants.items), "the new tenant is listed")
key = call(create_key, id=tenant.id, client=operator, body=CreateKeyBody(name="python"))
check(isinstance(key, Key) and key.key.startswith("hk_"), f"create_key gave {key!r}")

client = AuthenticatedClient(base_url=base, token=key.key, raise_on_unexpected_status=True)
endpoint = call(create_endpoint, client=client, body=CreateEndpointBody(
    url=os.environ["HERALD_RECEIVER_URL"], event_types=["*"], dpa_confirmed_by="Anna Beispiel", enabled=True))
check(isinstance(endpoint, Endpoint), f"create_endpoint gave {endpoint!r}")
check(endpoint.secret.startswith("whsec_") and endpoint.enabled is True, "the endpoint is enabled with a secret")

queued = call(test_endpoint, id=endpoint.id, client=client, body=TestEndpointBody(event_type="invoice.paid"))
deadline = time.monotonic() + 30
while True:
    detail = call(get_delivery, id=uuid.UUID(str(queued.delivery_id)), client=client)
    check(isinstance(detail, DeliveryDetail), f"get_delivery gave {detail!r}")
    if detail.delivery.status.value == "delivered":
        break
    check(time.monotonic() < deadline, f"the test delivery is {detail.delivery.status.value} after 30 s")
    time.sleep(0.1)
check(isinstance(detail.attempts[0].attempt, int) and detail.attempts[0].trigger.value in ("automatic", "manual"),
      f"attempts are typed: {detail.attempts[0]!r}")
check(isinstance(detail.event.data.to_dict(), dict), "an event's data is an object")

page = call(list_deliveries, client=client)
check(isinstance(page, DeliveryPage) and any(item.id == detail.delivery.id for item in page.items), "the delivery log lists it")
published = call(publish_event, client=client, body=PublishEventBody(
    type_="client.created", data=PublishEventBodyData.from_dict({"client_id": 42, "name": "Ada"})))
check(isinstance(published.id, str) and published.id, f"publish_event gave {published!r}")

missing = call(get_endpoint, id=uuid.uuid4(), client=AuthenticatedClient(base_url=base, token=key.key))
check(isinstance(missing, Problem) and missing.status == 404, f"a foreign id gave {missing!r}")
print(f"client round trip: {calls} calls, all typed as documented")
