//! The demo catalog: products loaded at start-up from a JSON file (`CATALOG_SEED`, an
//! array of `catalog.create` bodies), inserted by SKU when missing. Idempotent: a
//! restart, or a second instance, adds nothing, and an admin's later changes to a
//! seeded product are kept.

use crate::db::entities::product;
use proto_msgs::catalog::CreateProductRequest;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};
use std::path::Path;

/// Reads and checks the seed file (every product as `catalog.create` would); the
/// error says what is wrong (the file, or a product's field by its path).
pub fn read(path: &Path) -> Result<Vec<CreateProductRequest>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// Inserts the products whose SKU is not in the catalog yet; returns how many.
pub async fn load(
    db: &DatabaseConnection,
    products: &[CreateProductRequest],
) -> Result<u64, DbErr> {
    if products.is_empty() {
        return Ok(0);
    }
    let now = chrono::Utc::now();
    let rows = products.iter().map(|p| product::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        sku: Set(p.sku.as_str().to_owned()),
        name: Set(p.name.as_str().to_owned()),
        description: Set(p
            .description
            .as_ref()
            .map(|d| d.as_str().to_owned())
            .unwrap_or_default()),
        category: Set(p.category.as_str().to_owned()),
        price_cents: Set(p.price.minor()),
        stock: Set(p.stock.map_or(0, |s| s.get())),
        active: Set(p.active),
        created_at: Set(now),
        updated_at: Set(now),
    });
    // `ON CONFLICT (sku) DO NOTHING`: an existing product is left as it is.
    product::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(product::Column::Sku)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
}
