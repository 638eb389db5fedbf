//! Conversations in SQLite, through sqlx: WAL mode, foreign keys on,
//! migrations embedded in the binary and run at start. The queries are
//! plain SQL with `$n` parameters, so a PostgreSQL store can share them.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::api::{
    Conversation, ConversationList, ConversationMessage, ConversationSummary, MessageStats,
    MessageStatus, ModelOptions, Role, UpdateConversationRequest,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use super::{
    ConversationStore, ListQuery, NewConversation, NewMessage, SavedReply, StoreError, UNTITLED,
    title_from,
};
use crate::backend::BoxFuture;
use crate::config::Database;

// The proc macro itself: `sqlx::migrate!` would need the query macros too.
type Transaction = sqlx::Transaction<'static, sqlx::Sqlite>;
type WriterTurn<'a> = tokio::sync::MutexGuard<'a, ()>;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::sqlx_macros::migrate!("./migrations");

pub struct SqliteStore {
    pool: SqlitePool,
    /// See [`ConversationStore::writes`].
    writes: AtomicU64,
    /// Writers take turns here, in order, rather than in SQLite's busy
    /// handler, which makes a writer that finds the database locked sleep
    /// and retry (up to 100 ms a time). Measured with 1,000 questions in
    /// flight: p99 2.60 → 2.08 s, p50 1.57 → 1.69 s; at that load the cost
    /// is the writes themselves (see BENCHMARKS.md).
    writer: tokio::sync::Mutex<()>,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0:?} is not a SQLite URL (sqlite://…): only SQLite is supported")]
    NotSqlite(String),
    #[error("{url:?} is not a SQLite database URL: {source}")]
    Url { url: String, source: sqlx::Error },
    #[error("cannot create the directory {}: {source}", .dir.display())]
    Directory {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Open(sqlx::Error),
    #[error("cannot bring the database up to date: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

impl SqliteStore {
    /// Opens (creating it if needed) the database and brings its schema up
    /// to date.
    pub async fn open(database: &Database) -> Result<Self, OpenError> {
        let options = match database {
            Database::Url(url) if !url.starts_with("sqlite:") => {
                return Err(OpenError::NotSqlite(url.clone()));
            }
            Database::Url(url) => {
                SqliteConnectOptions::from_str(url).map_err(|source| OpenError::Url {
                    url: url.clone(),
                    source,
                })?
            }
            Database::File(path) => SqliteConnectOptions::new().filename(path),
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL makes NORMAL durable across crashes of this process; only a
            // power loss can take the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
            && options.get_filename() != Path::new(":memory:")
        {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Directory {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(OpenError::Open)?;
        MIGRATIONS.run(&pool).await.map_err(OpenError::Migrate)?;
        Ok(Self {
            pool,
            writes: AtomicU64::new(0),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// A transaction that writes. It takes the write lock at once: a read
    /// that later tries to write fails at once (SQLite's busy timeout does
    /// not apply to that upgrade) when another connection wrote meanwhile,
    /// as two questions posted together would.
    async fn write(&self) -> Result<(WriterTurn<'_>, Transaction), StoreError> {
        let turn = self.turn().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::database)?;
        Ok((turn, tx))
    }

    /// This writer's turn, counted as a write; held until the write is done.
    async fn turn(&self) -> WriterTurn<'_> {
        let turn = self.writer.lock().await;
        self.writes.fetch_add(1, Ordering::Relaxed);
        turn
    }

    async fn conversation(&self, id: &str) -> Result<Conversation, StoreError> {
        let row: ConversationRow = sqlx::query_as(
            "SELECT id, title, model, system, options, current_id, created_at, updated_at \
             FROM conversations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::database)?
        .ok_or_else(|| StoreError::NoConversation(id.to_string()))?;
        let messages: Vec<MessageRow> = sqlx::query_as(
            "SELECT id, parent_id, role, content, thinking, model, status, error, stats, \
             generation_id, created_at FROM messages WHERE conversation_id = $1 \
             ORDER BY created_at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::database)?;
        Ok(row.into_conversation(messages.into_iter().map(MessageRow::into_message).collect()))
    }

    async fn update_conversation(
        &self,
        id: &str,
        changes: UpdateConversationRequest,
    ) -> Result<Conversation, StoreError> {
        let (_turn, mut tx) = self.write().await?;
        let exists: Option<(String,)> =
            sqlx::query_as("SELECT id FROM conversations WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::database)?;
        if exists.is_none() {
            return Err(StoreError::NoConversation(id.to_string()));
        }
        if let Some(current) = &changes.current_id {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT id FROM messages WHERE id = $1 AND conversation_id = $2")
                    .bind(current)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::database)?;
            if found.is_none() {
                return Err(StoreError::NoMessage(current.clone()));
            }
        }
        let options = changes
            .options
            .as_ref()
            .map(|options| serde_json::to_string(options).expect("options serialise"));
        // Each field changes only when given (`$n IS NULL` leaves it); model
        // and system can also be cleared (their flag set, value null).
        sqlx::query(
            "UPDATE conversations SET \
               title = COALESCE($2, title), \
               titled_by_user = CASE WHEN $2 IS NULL THEN titled_by_user ELSE 1 END, \
               model = CASE WHEN $3 = 1 THEN $4 ELSE model END, \
               system = CASE WHEN $5 = 1 THEN $6 ELSE system END, \
               options = COALESCE($7, options), \
               current_id = COALESCE($8, current_id), \
               updated_at = $9 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(changes.title.as_deref())
        .bind(i64::from(changes.model.is_some()))
        .bind(changes.model.clone().flatten())
        .bind(i64::from(changes.system.is_some()))
        .bind(changes.system.clone().flatten())
        .bind(options)
        .bind(changes.current_id.as_deref())
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::database)?;
        tx.commit().await.map_err(StoreError::database)?;
        drop(_turn);
        self.conversation(id).await
    }

    async fn insert_message(
        &self,
        conversation_id: &str,
        message: NewMessage,
    ) -> Result<ConversationMessage, StoreError> {
        let (_turn, mut tx) = self.write().await?;
        let conversation: Option<(i64, i64)> = sqlx::query_as(
            "SELECT titled_by_user, (SELECT COUNT(*) FROM messages WHERE conversation_id = $1) \
             FROM conversations WHERE id = $1",
        )
        .bind(conversation_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::database)?;
        let Some((titled_by_user, earlier_messages)) = conversation else {
            return Err(StoreError::NoConversation(conversation_id.to_string()));
        };
        if let Some(parent) = &message.parent_id {
            let found: Option<(String,)> =
                sqlx::query_as("SELECT id FROM messages WHERE id = $1 AND conversation_id = $2")
                    .bind(parent)
                    .bind(conversation_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::database)?;
            if found.is_none() {
                return Err(StoreError::NoMessage(parent.clone()));
            }
        }
        let id = new_id();
        let created_at = now_ms();
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, model, status, \
             error, generation_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(conversation_id)
        .bind(message.parent_id.as_deref())
        .bind(role_name(message.role))
        .bind(&message.content)
        .bind(message.model.as_deref())
        .bind(status_name(message.status))
        .bind(message.error.as_deref())
        .bind(message.generation_id.as_deref())
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::database)?;
        let title = (titled_by_user == 0 && earlier_messages == 0 && message.role == Role::User)
            .then(|| title_from(&message.content))
            .filter(|title| !title.is_empty());
        sqlx::query(
            "UPDATE conversations SET current_id = $2, updated_at = $3, title = COALESCE($4, title) \
             WHERE id = $1",
        )
        .bind(conversation_id)
        .bind(&id)
        .bind(created_at)
        .bind(title)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::database)?;
        tx.commit().await.map_err(StoreError::database)?;
        Ok(ConversationMessage {
            id,
            parent_id: message.parent_id,
            role: message.role,
            content: message.content,
            thinking: None,
            model: message.model,
            status: message.status,
            error: message.error,
            stats: None,
            generation_id: message.generation_id,
            created_at: rfc3339(created_at),
        })
    }

    async fn page(&self, query: ListQuery) -> Result<ConversationList, StoreError> {
        let (before_time, before_id) = match &query.before {
            None => (i64::MAX, String::new()),
            Some(cursor) => parse_cursor(cursor)?,
        };
        let pattern = query.search.as_deref().map(like_pattern);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows: Vec<SummaryRow> = sqlx::query_as(
            "SELECT id, title, model, created_at, updated_at FROM conversations c \
             WHERE (updated_at < $1 OR (updated_at = $1 AND ($2 = '' OR id < $2))) \
               AND ($3 IS NULL OR title LIKE $3 ESCAPE '\\' OR EXISTS ( \
                   SELECT 1 FROM messages m WHERE m.conversation_id = c.id \
                   AND m.content LIKE $3 ESCAPE '\\')) \
             ORDER BY updated_at DESC, id DESC LIMIT $4",
        )
        .bind(before_time)
        .bind(&before_id)
        .bind(pattern)
        .bind(limit.saturating_add(1))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::database)?;
        let next = (rows.len() > query.limit)
            .then(|| query.limit.checked_sub(1).and_then(|last| rows.get(last)))
            .flatten()
            .map(|last| format!("{}.{}", last.updated_at, last.id));
        let conversations = rows
            .into_iter()
            .take(query.limit)
            .map(SummaryRow::into_summary)
            .collect();
        Ok(ConversationList {
            conversations,
            next,
        })
    }
}

impl ConversationStore for SqliteStore {
    fn create(&self, new: NewConversation) -> BoxFuture<'_, Result<Conversation, StoreError>> {
        Box::pin(async move {
            let id = new_id();
            let now = now_ms();
            let titled_by_user = new.title.as_deref().is_some_and(|t| !t.trim().is_empty());
            let title = new
                .title
                .filter(|_| titled_by_user)
                .unwrap_or_else(|| UNTITLED.to_string());
            let _turn = self.turn().await;
            sqlx::query(
                "INSERT INTO conversations (id, title, titled_by_user, model, system, options, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&id)
            .bind(&title)
            .bind(i64::from(titled_by_user))
            .bind(new.model.as_deref())
            .bind(new.system.as_deref())
            .bind(serde_json::to_string(&new.options).expect("options serialise"))
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::database)?;
            drop(_turn);
            self.conversation(&id).await
        })
    }

    fn list(&self, query: ListQuery) -> BoxFuture<'_, Result<ConversationList, StoreError>> {
        Box::pin(self.page(query))
    }

    fn get(&self, id: &str) -> BoxFuture<'_, Result<Conversation, StoreError>> {
        let id = id.to_string();
        Box::pin(async move { self.conversation(&id).await })
    }

    fn update(
        &self,
        id: &str,
        changes: UpdateConversationRequest,
    ) -> BoxFuture<'_, Result<Conversation, StoreError>> {
        let id = id.to_string();
        Box::pin(async move { self.update_conversation(&id, changes).await })
    }

    fn delete(&self, id: &str) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        let id = id.to_string();
        Box::pin(async move {
            let (_turn, mut tx) = self.write().await?;
            let running: Vec<(String,)> = sqlx::query_as(
                "SELECT generation_id FROM messages WHERE conversation_id = $1 \
                 AND status = 'streaming' AND generation_id IS NOT NULL",
            )
            .bind(&id)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::database)?;
            let deleted = sqlx::query("DELETE FROM conversations WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::database)?;
            if deleted.rows_affected() == 0 {
                return Err(StoreError::NoConversation(id));
            }
            tx.commit().await.map_err(StoreError::database)?;
            Ok(running.into_iter().map(|(id,)| id).collect())
        })
    }

    fn add_message(
        &self,
        conversation_id: &str,
        message: NewMessage,
    ) -> BoxFuture<'_, Result<ConversationMessage, StoreError>> {
        let conversation_id = conversation_id.to_string();
        Box::pin(async move { self.insert_message(&conversation_id, message).await })
    }

    fn save_reply(
        &self,
        message_id: &str,
        reply: SavedReply,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let message_id = message_id.to_string();
        Box::pin(async move {
            let stats = reply
                .stats
                .map(|stats| serde_json::to_string(&stats).expect("stats serialise"));
            // The generation is kept only while the answer streams.
            let _turn = self.turn().await;
            sqlx::query(
                "UPDATE messages SET content = $2, status = $3, error = $4, \
                 stats = COALESCE($5, stats), thinking = $6, \
                 generation_id = CASE WHEN $3 = 'streaming' THEN generation_id ELSE NULL END \
                 WHERE id = $1",
            )
            .bind(&message_id)
            .bind(&reply.content)
            .bind(status_name(reply.status))
            .bind(reply.error.as_deref())
            .bind(stats)
            .bind(reply.thinking.as_deref())
            .execute(&self.pool)
            .await
            .map_err(StoreError::database)?;
            Ok(())
        })
    }

    fn interrupt_unfinished(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let _turn = self.turn().await;
            let done = sqlx::query(
                "UPDATE messages SET status = 'interrupted', generation_id = NULL, \
                 error = 'the server stopped while this answer was being written' \
                 WHERE status = 'streaming'",
            )
            .execute(&self.pool)
            .await
            .map_err(StoreError::database)?;
            Ok(done.rows_affected())
        })
    }

    fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

#[derive(FromRow)]
struct ConversationRow {
    id: String,
    title: String,
    model: Option<String>,
    system: Option<String>,
    options: String,
    current_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ConversationRow {
    fn into_conversation(self, messages: Vec<ConversationMessage>) -> Conversation {
        Conversation {
            id: self.id,
            title: self.title,
            model: self.model,
            system: self.system,
            options: serde_json::from_str::<ModelOptions>(&self.options).unwrap_or_default(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            current_id: self.current_id,
            messages,
        }
    }
}

#[derive(FromRow)]
struct MessageRow {
    id: String,
    parent_id: Option<String>,
    role: String,
    content: String,
    thinking: Option<String>,
    model: Option<String>,
    status: String,
    error: Option<String>,
    stats: Option<String>,
    generation_id: Option<String>,
    created_at: i64,
}

impl MessageRow {
    fn into_message(self) -> ConversationMessage {
        ConversationMessage {
            id: self.id,
            parent_id: self.parent_id,
            role: parse_role(&self.role),
            content: self.content,
            thinking: self.thinking,
            model: self.model,
            status: parse_status(&self.status),
            error: self.error,
            stats: self
                .stats
                .and_then(|stats| serde_json::from_str::<MessageStats>(&stats).ok()),
            generation_id: self.generation_id,
            created_at: rfc3339(self.created_at),
        }
    }
}

#[derive(FromRow)]
struct SummaryRow {
    id: String,
    title: String,
    model: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl SummaryRow {
    fn into_summary(self) -> ConversationSummary {
        ConversationSummary {
            id: self.id,
            title: self.title,
            model: self.model,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// Reads a list cursor: `<updated_at in ms>.<id>` of a page's last
/// conversation, as `next` gave it out.
fn parse_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let (ms, id) = cursor.split_once('.').ok_or(StoreError::BadCursor)?;
    let ms = ms.parse().map_err(|_| StoreError::BadCursor)?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(StoreError::BadCursor);
    }
    Ok((ms, id.to_string()))
}

/// A LIKE pattern matching `text` anywhere, its own `%` and `_` literal.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn parse_role(name: &str) -> Role {
    match name {
        "system" => Role::System,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => Role::User,
    }
}

fn status_name(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Streaming => "streaming",
        MessageStatus::Complete => "complete",
        MessageStatus::Stopped => "stopped",
        MessageStatus::Failed => "failed",
        MessageStatus::Interrupted => "interrupted",
    }
}

fn parse_status(name: &str) -> MessageStatus {
    match name {
        "streaming" => MessageStatus::Streaming,
        "stopped" => MessageStatus::Stopped,
        "failed" => MessageStatus::Failed,
        "interrupted" => MessageStatus::Interrupted,
        _ => MessageStatus::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_literal() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn a_cursor_reads_back_and_a_forged_one_is_refused() {
        assert_eq!(
            parse_cursor("1764583200123.abc123").unwrap(),
            (1_764_583_200_123, "abc123".into())
        );
        assert!(parse_cursor("soon").is_err());
        assert!(parse_cursor("1.x' OR 1=1 --").is_err());
    }
}
