//! SQL of the `customers` projection (fed by `user.registered` / `user.updated`).

use chrono::{DateTime, Utc};
use proto_msgs::Role;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use uuid::Uuid;

/// What order-svc knows about a user, as of `updated_at` (the user's own timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub updated_at: DateTime<Utc>,
}

/// Writes `customer` unless a newer state is already stored: events may arrive out of
/// order (a retried `user.updated` behind a later one), and the newest must win.
/// Returns whether the row changed.
pub async fn upsert_if_newer<C: ConnectionTrait>(
    conn: &C,
    customer: &Customer,
) -> Result<bool, DbErr> {
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO customers (user_id, email, name, role, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE
               SET email = EXCLUDED.email, name = EXCLUDED.name,
                   role = EXCLUDED.role, updated_at = EXCLUDED.updated_at
             WHERE customers.updated_at < EXCLUDED.updated_at",
            [
                customer.user_id.into(),
                customer.email.clone().into(),
                customer.name.clone().into(),
                customer.role.as_str().into(),
                customer.updated_at.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The projected customer, if any event about them has arrived.
pub async fn find<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> Result<Option<Customer>, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT user_id, email, name, role, updated_at FROM customers WHERE user_id = $1",
            [user_id.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let role: String = row.try_get("", "role")?;
    Ok(Some(Customer {
        user_id: row.try_get("", "user_id")?,
        email: row.try_get("", "email")?,
        name: row.try_get("", "name")?,
        role: role
            .parse()
            .map_err(|e: String| DbErr::Custom(format!("customers.role: {e}")))?,
        updated_at: row.try_get("", "updated_at")?,
    }))
}
