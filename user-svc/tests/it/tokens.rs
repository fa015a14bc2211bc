//! Access tokens verify with the key from `users.jwks`, and only then.

use crate::common::TestApp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use proto_msgs::Role;
use proto_msgs::users::{Claims, Empty, Jwks, UserProfile, methods};
use std::time::Duration;
use user_svc::keys::generate_pem;

/// What a verifier does: pick the key by `kid`, accept EdDSA only, check iss/aud/exp.
fn verify(token: &str, jwks: &Jwks) -> Result<Claims, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| format!("unknown kid {kid}"))?;
    let key = DecodingKey::from_ed_components(&jwk.x).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["shop-user-svc"]);
    validation.set_audience(&["shop"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn jwks(app: &TestApp) -> Jwks {
    app.call(methods::JWKS, &Empty {}, None).await.unwrap()
}

fn claims_for(sub: &str, role: Role, iat: i64, exp: i64) -> Claims {
    Claims {
        sub: sub.into(),
        role,
        sid: uuid::Uuid::new_v4(),
        iat,
        exp,
        iss: "shop-user-svc".into(),
        aud: "shop".into(),
    }
}

#[tokio::test]
async fn jwks_publishes_one_ed25519_key_with_a_stable_kid() {
    let mut app = TestApp::spawn().await;
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 1);
    let k = &set.keys[0];
    assert_eq!(
        (
            k.kty.as_str(),
            k.crv.as_str(),
            k.alg.as_str(),
            k.use_.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA", "sig")
    );
    assert_eq!(URL_SAFE_NO_PAD.decode(&k.x).unwrap().len(), 32);
    assert!(!k.kid.is_empty());
    // Its JSON spells `use`.
    let v: serde_json::Value = app.call(methods::JWKS, &Empty {}, None).await.unwrap();
    assert_eq!(v["keys"][0]["use"], "sig");

    app.register("ada@example.com", "password123", "Ada").await;
    let before = app
        .try_login("ada@example.com", "password123")
        .await
        .unwrap();
    // Same key source after a restart: same key, same kid, old tokens still verify.
    app.restart_with(|_| {}).await;
    let again = jwks(&app).await;
    assert_eq!(again, set);
    verify(&before.access_token, &again).unwrap();
    app.stop().await;
}

#[tokio::test]
async fn issued_tokens_verify_with_the_published_key() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let token = app
        .try_login("ada@example.com", "password123")
        .await
        .unwrap();
    let set = jwks(&app).await;

    // Exactly as the gateway would: the key from the JWKS's `x`.
    let header = jsonwebtoken::decode_header(&token.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(set.keys[0].kid.as_str()));
    let key = DecodingKey::from_ed_components(&set.keys[0].x).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["shop-user-svc"]);
    validation.set_audience(&["shop"]);
    let claims = jsonwebtoken::decode::<Claims>(&token.access_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims.sub, ada.id.to_string());
    assert_eq!(claims.role, Role::User);
    assert_eq!(claims.exp - claims.iat, 900);
    let now = chrono::Utc::now().timestamp();
    assert!((claims.iat - now).abs() < 60);

    // The actor from the token is what the gateway passes on.
    let id: uuid::Uuid = claims.sub.parse().unwrap();
    let me: UserProfile = app
        .call(
            methods::ME,
            &Empty {},
            Some(proto_msgs::Actor {
                id,
                role: claims.role,
            }),
        )
        .await
        .unwrap();
    assert_eq!(me.user, ada);
    app.stop().await;
}

#[tokio::test]
async fn forged_expired_and_tampered_tokens_fail() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com", "password123", "Ada").await;
    let good = app
        .try_login("ada@example.com", "password123")
        .await
        .unwrap()
        .access_token;
    let set = jwks(&app).await;
    verify(&good, &set).unwrap();
    let sub = ada.id.to_string();
    let now = chrono::Utc::now().timestamp();

    // Expired: the service's own key and kid, but `exp` has passed.
    let own = app.issuer(Duration::from_secs(1));
    let expired = own
        .sign(&claims_for(&sub, Role::User, now - 7200, now - 3600))
        .unwrap();
    assert!(verify(&expired, &set).unwrap_err().contains("Expired"));
    // Control: the same signer with a valid `exp` passes, so only `exp` failed above.
    verify(
        &own.sign(&claims_for(&sub, Role::User, now, now + 60))
            .unwrap(),
        &set,
    )
    .unwrap();

    // Tampered: the payload says admin, the signature was made for "user".
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = "admin".into();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(
        verify(&tampered, &set)
            .unwrap_err()
            .contains("InvalidSignature")
    );

    // Wrong kid: a kid the JWKS does not have.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("not-our-key".into());
    let der = {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let user_svc::keys::KeySource::Pem(pem) = &app.svc.config.jwt_key else {
            panic!("tests use an in-memory key")
        };
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .unwrap()
            .to_pkcs8_der()
            .unwrap()
    };
    let wrong_kid = jsonwebtoken::encode(
        &header,
        &claims_for(&sub, Role::User, now, now + 60),
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    assert!(
        verify(&wrong_kid, &set)
            .unwrap_err()
            .contains("unknown kid")
    );

    // Another key claiming our kid: the signature does not verify.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(set.keys[0].kid.clone());
    let impostor = jsonwebtoken::encode(
        &header,
        &claims_for(&sub, Role::Admin, now, now + 60),
        &jsonwebtoken::EncodingKey::from_ed_pem(generate_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(
        verify(&impostor, &set)
            .unwrap_err()
            .contains("InvalidSignature")
    );

    // alg none: no signature at all.
    let none_header = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(
            &serde_json::json!({"alg": "none", "typ": "JWT", "kid": set.keys[0].kid}),
        )
        .unwrap(),
    );
    let unsigned = format!("{none_header}.{forged_payload}.");
    assert!(verify(&unsigned, &set).is_err());
    // HS256 with the public key as the secret (key confusion): refused as well.
    let hs = jsonwebtoken::encode(
        &{
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(set.keys[0].kid.clone());
            h
        },
        &claims_for(&sub, Role::Admin, now, now + 60),
        &jsonwebtoken::EncodingKey::from_secret(set.keys[0].x.as_bytes()),
    )
    .unwrap();
    assert!(verify(&hs, &set).is_err());

    // The crate's own verifier agrees on every case.
    for bad in [&expired, &tampered, &wrong_kid, &impostor, &unsigned, &hs] {
        assert!(user_svc::tokens::verify(bad, &set, "shop-user-svc", "shop").is_err());
    }
    user_svc::tokens::verify(&good, &set, "shop-user-svc", "shop").unwrap();
    app.stop().await;
}
