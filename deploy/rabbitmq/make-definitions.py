#!/usr/bin/env python3
"""Writes definitions.json for the compose broker: the `shop` vhost, both exchanges,
the service queues, and one broker user per service with least-privilege permissions.

Passwords come from the environment (RABBITMQ_ADMIN_PASSWORD, RABBITMQ_GATEWAY_PASSWORD,
RABBITMQ_USER_SVC_PASSWORD, RABBITMQ_ORDER_SVC_PASSWORD); the committed file was made
with the development defaults below. For production run:
    RABBITMQ_..._PASSWORD=... python3 deploy/rabbitmq/make-definitions.py > definitions.json
"""
import base64, hashlib, json, os, sys

VHOST = "shop"

def password_hash(password: str) -> str:
    # rabbit_password_hashing_sha256: base64(salt || sha256(salt || password)).
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()

def user(name, env, default, tags=""):
    return {"name": name, "password_hash": password_hash(os.environ.get(env, default)),
            "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": [t for t in tags.split(",") if t],
            "limits": {}}

def perm(user, configure, write, read):
    return {"user": user, "vhost": VHOST, "configure": configure, "write": write, "read": read}

def topic(user, exchange, write, read):
    # What an account may publish (routing keys) and bind (binding keys) on a topic
    # exchange.
    return {"user": user, "vhost": VHOST, "exchange": exchange, "write": write, "read": read}

def service_perm(user, svc):
    # Its own queues only: declares them (configure), binds them (write on the queue,
    # read on the exchange), consumes them (read). Never configure on the shared
    # exchanges: nobody but these definitions (or a deploy step) declares or deletes
    # them. Publishes replies through the default exchange (anyone with that write can
    # reach any queue: the services act on x-actor-* only from the gateway's account,
    # which the broker proves with `user_id`) and events.
    own = rf"{svc}\..*"
    return perm(user,
                configure=rf"^{own}$",
                write=rf"^(amq\.default|events|{own})$",
                read=rf"^(rpc|events|{own})$")

# service: (account, RPC namespaces it answers, event types it publishes, event types it consumes)
SERVICES = {
    "users": ("user-svc", ["users"], ["user"], ["order.created", "order.updated"]),
    "orders": ("order-svc", ["orders", "catalog"], ["order"], ["user.registered", "user.updated"]),
}

def keys(prefixes):
    return "^(" + "|".join(prefixes) + r")\."

queues = []
bindings = []
for svc, (_, rpc, _, keys_in) in SERVICES.items():
    queues.append({"name": f"{svc}.rpc", "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": {}})
    queues.append({"name": f"{svc}.events.dlq", "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": {}})
    queues.append({"name": f"{svc}.events", "vhost": VHOST, "durable": True, "auto_delete": False,
                   "arguments": {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{svc}.events.dlq"}})
    for key in [f"{ns}.*" for ns in rpc] + [f"{svc}.sys.*"]:
        bindings.append({"source": "rpc", "vhost": VHOST, "destination": f"{svc}.rpc", "destination_type": "queue",
                         "routing_key": key, "arguments": {}})
    for key in keys_in:
        bindings.append({"source": "events", "vhost": VHOST, "destination": f"{svc}.events", "destination_type": "queue",
                         "routing_key": key, "arguments": {}})

definitions = {
    "rabbit_version": "3.13.0",
    "vhosts": [{"name": VHOST}],
    "users": [
        user("admin", "RABBITMQ_ADMIN_PASSWORD", "admin-dev-password", "administrator"),
        user("gateway", "RABBITMQ_GATEWAY_PASSWORD", "gateway-dev-password"),
        user("user-svc", "RABBITMQ_USER_SVC_PASSWORD", "user-svc-dev-password"),
        user("order-svc", "RABBITMQ_ORDER_SVC_PASSWORD", "order-svc-dev-password"),
    ],
    "permissions": [
        perm("admin", ".*", ".*", ".*"),
        # The gateway publishes requests to `rpc`, reads its own server-named queues
        # (amq.gen-*: replies, and the session revocations it binds from `events`,
        # which needs write on its queue and read on the exchange); nothing else.
        perm("gateway", configure=r"^amq\.gen-.*$", write=r"^(rpc|amq\.gen-.*)$",
             read=r"^(amq\.gen-.*|events)$"),
        service_perm("user-svc", "users"),
        service_perm("order-svc", "orders"),
    ],
    # Routing keys: the gateway may call every service's methods; a service may bind
    # only its own methods (so it never sees another's requests: no `#` spy queue) and
    # the events it consumes, and publish only its own events.
    "topic_permissions": [
        topic("gateway", "rpc", write=keys(["users", "orders", "catalog"]), read="^$"),
        # The gateway may bind only the revocation events, publish none.
        topic("gateway", "events", write="^$", read=r"^user\.sessions_revoked$"),
    ] + [
        t
        for svc, (account, rpc, out, _) in SERVICES.items()
        for t in (
            topic(account, "rpc", write="^$", read=keys(rpc)),
            topic(account, "events", write=keys(out),
                  read=keys(["order" if svc == "users" else "user"])),
        )
    ],
    "exchanges": [
        {"name": name, "vhost": VHOST, "type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}}
        for name in ("rpc", "events")
    ],
    "queues": queues,
    "bindings": bindings,
}
json.dump(definitions, sys.stdout, indent=2)
print()
