//! The OpenAPI document tells the truth: schemathesis (a property-based OpenAPI tester)
//! reads `GET /openapi.json` from a gateway in front of the whole system and sends it
//! requests generated from the document, valid and invalid, then checks each answer
//! against what the document promises.
//!
//! Checks: all of schemathesis' (`--checks all`). The ones that matter here:
//! - `not_a_server_error`: no request, however odd, makes a 500.
//! - `status_code_conformance`: every status a route answers is documented for it (the
//!   gateway's own 401/413/415/429 and the services' 503/504 included).
//! - `content_type_conformance`, `response_headers_conformance`,
//!   `response_schema_conformance`: bodies and headers are what the document says.
//! - `positive_data_acceptance`: a request the schema allows is not refused as invalid
//!   (400): every constraint the services enforce is in the document.
//! - `negative_data_rejection`: a request the schema forbids is refused: the document
//!   is not stricter or looser than the services.
//! - `missing_required_header`, `ignored_auth`: a route that needs a token refuses a
//!   request without one or with a bad one (401); `unsupported_method`,
//!   `allow_header_conformance`: a method a path does not have is 405 with `Allow`.
//! - `use_after_free`, `ensure_resource_availability`: in the stateful phase, which
//!   follows the links schemathesis infers from `Location` headers and the schemas
//!   (register → get the user, create an order → get it, change its status); nothing is
//!   ever deleted, so they have little to check. `object_level_authorization` needs two
//!   users' credentials in one run; "someone else's order is 404" is proved by the tests
//!   of the gateway and the services.
//!
//! Strings are generated as ASCII (`--generation-codec ascii`): password lengths are
//! counted in bytes (bcrypt's limit), which JSON Schema cannot say; for ASCII, bytes
//! and characters are the same, so the documented `minLength`/`maxLength` are exact.
//! (With the default codec schemathesis soon sends a 30-character, 109-byte password,
//! schema-valid and refused: the one place the document can only approximate a rule.)
//!
//! Runs twice, as a user and as an admin (who may list other users' orders), with a
//! fixed seed and a bounded number of examples per operation (under a minute each).
//! schemathesis is a Python program: `scripts/deps.sh` (`ensure_schemathesis`, called by
//! `.ci/run`) installs the pinned version into `.run/schemathesis`. Without it this test
//! fails and says how to install it.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use system_tests::harness::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack, StackOptions, workspace_dir};

const CHECKS: &str = "all";

/// schemathesis hooks: the rules the document cannot say. `cursor` and `offset`
/// exclude each other (both is 400, as the route's description says), and OpenAPI has no
/// way to relate two query parameters; cases with both are not generated. And which
/// products exist (see the hook's comment).
const HOOKS: &str = r#"
import re
import schemathesis


@schemathesis.hook
def filter_query(ctx, query):
    if not query:
        return True
    return not (query.get("cursor") not in (None, "") and query.get("offset") is not None)

# An order names catalog products, which the document cannot list: a schema-valid line
# (one product reference of the right form) is pointed at the demo catalog's WIDGET,
# without a client price (a different one is a documented 409). Lines that break the
# schema are left as they are, so they are still refused.
SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

def _points_at_a_product(item):
    if not isinstance(item, dict):
        return False
    sku, pid = item.get("sku"), item.get("product_id")
    if (sku is None) == (pid is None):
        return False
    return (isinstance(sku, str) and SKU.match(sku)) or (isinstance(pid, str) and UUID.match(pid))

# `before_call`: every phase, the stateful one (whose links fill ids in) included.
@schemathesis.hook
def before_call(ctx, case, kwargs):
    op = case.operation
    if op.path != "/orders" or op.method.upper() != "POST":
        return
    body = case.body
    meta = getattr(case, "meta", None)
    generation = getattr(meta, "generation", None)
    negative = generation is not None and generation.mode.is_negative
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        for item in body["items"]:
            # A positive case's line is a product reference by the schema, but links fill
            # `product_id` from other responses into lines that name a `sku` too (or a
            # null one): every such line is pointed at the demo product. In a negative
            # case only the lines that are product references are.
            if isinstance(item, dict) and (not negative or _points_at_a_product(item)):
                item.pop("product_id", None)
                item.pop("price", None)
                item["sku"] = "WIDGET"
"#;

/// Test cases per operation and phase.
const MAX_EXAMPLES: &str = "150";

/// The version `scripts/deps.sh` pins (`SCHEMATHESIS_VERSION=`), read from there so the
/// two cannot drift.
fn pinned_version() -> String {
    let deps = workspace_dir().join("scripts/deps.sh");
    let text = std::fs::read_to_string(&deps).unwrap_or_else(|e| panic!("{}: {e}", deps.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("SCHEMATHESIS_VERSION="))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no SCHEMATHESIS_VERSION= in {}", deps.display()))
}

/// The schemathesis executable: `$SCHEMATHESIS`, the venv `ensure_schemathesis` makes, or
/// one on `PATH`, and only in the pinned version.
fn schemathesis() -> PathBuf {
    let version = pinned_version();
    let how = format!(
        "schemathesis {version} is needed for this test: run `source scripts/deps.sh && \
         ensure_schemathesis` (a venv in .run/schemathesis), or \
         `pip install schemathesis=={version}` and set SCHEMATHESIS to its executable"
    );
    let candidates: Vec<PathBuf> = match std::env::var_os("SCHEMATHESIS") {
        Some(path) => vec![PathBuf::from(path)],
        None => vec![
            workspace_dir().join(".run/schemathesis/bin/schemathesis"),
            PathBuf::from("schemathesis"),
        ],
    };
    let mut seen = Vec::new();
    for candidate in candidates {
        match Command::new(&candidate).arg("--version").output() {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                if text.ends_with(&version) {
                    return candidate;
                }
                seen.push(format!("{}: {text}", candidate.display()));
            }
            Ok(out) => seen.push(format!("{}: exit {}", candidate.display(), out.status)),
            Err(e) => seen.push(format!("{}: {e}", candidate.display())),
        }
    }
    panic!("{how}\n(tried: {})", seen.join("; "));
}

async fn login(stack: &Stack, email: &str, password: &str) -> String {
    let resp = stack
        .http
        .post(stack.url("/users/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "login {email}: {status} {body}");
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {body}"))
        .to_owned()
}

/// One schemathesis run with `token`; the whole report when it fails.
fn run(exe: &PathBuf, stack: &Stack, token: &str, who: &str) -> Result<(), String> {
    let report = stack.scratch.path().join(format!("schemathesis-{who}"));
    let hooks = stack.scratch.path().join("conformance_hooks.py");
    std::fs::write(&hooks, HOOKS).map_err(|e| format!("{}: {e}", hooks.display()))?;
    let out = Command::new(exe)
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .args(["run", &stack.url("/openapi.json")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", "20261123"])
        .args(["--generation-codec", "ascii"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        // One worker: hypothesis describes its lambdas by parsing source with `ast`,
        // which CPython 3.11 does not allow from two threads at once ("AST constructor
        // recursion depth mismatch").
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--generation-database", "none"])
        .args(["--no-color", "--output-truncate", "false"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // It would end the session whose token every other case uses (then 401s all
        // the way); tests/sessions.rs covers it.
        .args(["--exclude-path", "/users/logout/all"])
        .arg("--report-dir")
        .arg(&report)
        .current_dir(stack.scratch.path())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("== schemathesis as {who}\n{}", tail(&text, 4000));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "schemathesis as {who} failed ({}):\n{text}",
            out.status
        ))
    }
}

fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_answers_as_its_openapi_document_says() {
    let exe = schemathesis();
    let stack = Stack::start(StackOptions::full()).await;
    let email = "conformance-user@shop.test";
    let (status, body) = stack.register(email).await;
    assert_eq!(status, 201, "{body}");
    let user = login(&stack, email, "password-123").await;
    let admin = login(&stack, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let mut failures = Vec::new();
    for (who, token) in [("user", user), ("admin", admin)] {
        let stack = &stack;
        let exe = exe.clone();
        let result = tokio::task::block_in_place(|| run(&exe, stack, &token, who));
        if let Err(report) = result {
            failures.push(report);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
