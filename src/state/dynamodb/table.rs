//! The state table itself: the client (default AWS credential chain, the
//! config's region and endpoint, call timeouts scaled to the lease), what a
//! failed call means for its effect ([`Failure`]) and the one line that says
//! it, and opening the table: DescribeTable, CreateTable when asked, the
//! wait until it is ACTIVE, and the check of its key schema and of its
//! index ([`super::index`]).

use std::error::Error;
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, IndexStatus, KeySchemaElement, KeyType, ScalarAttributeType,
    TableDescription, TableStatus,
};

use super::{PK, index};
use crate::aws_error::{causes, is_credentials, one_line, service_line};
use crate::backoff::Backoff;
use crate::config::DynamoConfig;
use crate::state::StateError;

/// Every IAM action the store calls, for messages (`TransactWriteItems` is
/// authorised as `ConditionCheckItem` + `PutItem`; `Query` is on the index,
/// `table/NAME/index/*`).
const IAM_ACTIONS: &str = "dynamodb:DescribeTable, dynamodb:GetItem, dynamodb:PutItem, \
     dynamodb:UpdateItem, dynamodb:Scan and dynamodb:ConditionCheckItem on the table and \
     dynamodb:Query on its indexes (table/NAME/index/*)";

/// How long `create_table` waits for a new table to become ACTIVE.
const CREATE_DEADLINE: Duration = Duration::from_secs(120);
const CREATE_POLL: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));

/// The table and how to reach it.
pub(super) struct Table {
    pub client: Client,
    pub name: String,
    pub region: String,
    pub endpoint: Option<String>,
}

/// Why a table call did not succeed, by what it means for its effect.
#[derive(Debug)]
pub(super) enum Failure {
    /// The condition expression was false: nothing changed.
    Refused,
    /// The call did not change anything (refused, throttled, malformed).
    Failed(String),
    /// The call may have landed: a timeout, a 5xx, an answer that could not
    /// be read. Settled by reading the item back, never assumed.
    Unknown(String),
}

impl Failure {
    pub(super) fn message(&self) -> String {
        match self {
            Failure::Refused => "the condition was false".to_string(),
            Failure::Failed(m) | Failure::Unknown(m) => m.clone(),
        }
    }
}

impl Table {
    /// A client from the default credential chain (as the Secrets Manager
    /// store builds its own). Each attempt and each call is bounded by a
    /// share of the lease, so a renewal that hangs cannot outlive it.
    pub(super) async fn connect(config: &DynamoConfig) -> Table {
        let attempt = (config.lease / 3).clamp(Duration::from_secs(1), Duration::from_secs(5));
        let call = config
            .lease
            .clamp(Duration::from_secs(2), Duration::from_secs(15));
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(attempt)
            .operation_timeout(call)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .timeout_config(timeouts);
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Table {
            client: Client::new(&loader.load().await),
            name: config.table.clone(),
            region: config.region.clone(),
            endpoint: config.endpoint_url.clone(),
        }
    }

    /// `dynamodb:TABLE` and an item of it, for messages.
    pub(super) fn at(&self, pk: &str) -> String {
        format!("dynamodb:{} item {pk}", self.name)
    }

    /// The table where its region (and endpoint) can be read, for messages.
    pub(super) fn whereabouts(&self) -> String {
        match &self.endpoint {
            Some(url) => format!("{} in {} at {url}", self.name, self.region),
            None => format!("{} in {}", self.name, self.region),
        }
    }

    /// What `err` of `operation` means for its effect, with its message.
    pub(super) fn failure<E>(&self, operation: &str, err: &SdkError<E>) -> Failure
    where
        E: ProvideErrorMetadata + Error + 'static,
    {
        if err.code() == Some("ConditionalCheckFailedException") {
            return Failure::Refused;
        }
        let line = self.render(operation, err);
        // Only a 4xx is DynamoDB saying no; a 5xx, or a 2xx the SDK could
        // not read, may come from a call that landed.
        let refused = err
            .raw_response()
            .is_some_and(|r| (400..500).contains(&r.status().as_u16()));
        match err {
            SdkError::ServiceError(_) if refused => Failure::Failed(line),
            SdkError::ConstructionFailure(_) => Failure::Failed(line),
            _ => Failure::Unknown(line),
        }
    }

    /// `<Operation> on DynamoDB table <t>: <code>: <message> (request id
    /// <id>); <hint>`, one line, no SDK debug output.
    pub(super) fn render<E>(&self, operation: &str, err: &SdkError<E>) -> String
    where
        E: ProvideErrorMetadata + Error + 'static,
    {
        let head = format!("{operation} on DynamoDB table {}", self.whereabouts());
        let line = match err {
            SdkError::ServiceError(_) => {
                service_line(&head, err, |code| self.hint(operation, code))
            }
            SdkError::TimeoutError(_) => format!("{head}: timed out before an answer"),
            SdkError::ResponseError(_) => {
                format!("{head}: the answer could not be read: {}", causes(err))
            }
            _ if is_credentials(&causes(err)) => format!(
                "{head}: no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or attach an IAM role ({})",
                causes(err)
            ),
            _ => format!("{head}: {}", causes(err)),
        };
        one_line(&line)
    }

    fn hint(&self, operation: &str, code: &str) -> Option<String> {
        let action = match operation {
            "TransactWriteItems" => "ConditionCheckItem and dynamodb:PutItem",
            other => other,
        };
        Some(match code {
            "AccessDeniedException" | "AccessDenied" => format!(
                "the IAM principal needs dynamodb:{action} on table {}",
                self.name
            ),
            "ResourceNotFoundException" => self.missing(),
            "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded" => "the table is throttled; rekey retries".to_string(),
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException" => {
                "the AWS credentials were refused: check they are current and for this account"
                    .to_string()
            }
            _ => return None,
        })
    }

    /// Why the table is missing and what to do about it.
    pub(super) fn missing(&self) -> String {
        format!(
            "DynamoDB table {} does not exist: create it (deploy/ has the template) or set \
             daemon.dynamodb.create_table = true; rekey needs {IAM_ACTIONS} on it \
             (and dynamodb:CreateTable to create it)",
            self.whereabouts()
        )
    }

    fn io(&self, message: String) -> StateError {
        StateError::Io {
            path: format!("dynamodb:{}", self.name),
            message,
        }
    }

    /// The table, ready: checked, or created (and waited for) when missing
    /// and `create` allows it. What it found, for `rekey check --online`.
    /// A table without rekey's index is an error naming the command that
    /// adds it; an index still filling is waited for like a new table.
    pub(super) async fn open(&self, create: bool) -> Result<String, StateError> {
        match self.describe().await? {
            Some(desc) => {
                self.check_schema(&desc)?;
                let index = self.check_index(&desc)?;
                if desc.table_status() == Some(&TableStatus::Active) && index == IndexStatus::Active
                {
                    return Ok(self.ready(None));
                }
                self.wait_active().await
            }
            None if create => {
                self.create().await?;
                self.wait_active().await
            }
            None => Err(self.io(self.missing())),
        }
    }

    /// `table T is ACTIVE (waited N ms), key pk (S), index rekey-index`.
    fn ready(&self, waited: Option<Duration>) -> String {
        let waited = waited.map_or(String::new(), |w| format!(" (waited {} ms)", w.as_millis()));
        format!(
            "table {} is ACTIVE{waited}, key {PK} (S), index {} ACTIVE",
            self.whereabouts(),
            index::NAME
        )
    }

    /// Whether the table exists (with rekey's key schema); never creates it.
    pub(super) async fn exists(&self) -> Result<bool, StateError> {
        match self.describe().await? {
            Some(desc) => {
                self.check_schema(&desc)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// What `rekey check --online` reports: the table and its status, or
    /// that `create_table` will create it; never creates anything.
    pub(super) async fn check(&self, create_table: bool) -> Result<String, StateError> {
        match self.describe().await? {
            Some(desc) => {
                self.check_schema(&desc)?;
                let index = self.check_index(&desc)?;
                let status = desc.table_status().map_or("unknown", |s| s.as_str());
                Ok(format!(
                    "table {} is {status}, key {PK} (S), index {} {}",
                    self.whereabouts(),
                    index::NAME,
                    index.as_str()
                ))
            }
            None if create_table => Ok(format!(
                "table {} does not exist yet; create_table = true creates it at start \
                 (the IAM principal needs dynamodb:CreateTable)",
                self.whereabouts()
            )),
            None => Err(self.io(self.missing())),
        }
    }

    /// The table's description; `None` when it does not exist.
    async fn describe(&self) -> Result<Option<TableDescription>, StateError> {
        let answer = self
            .client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out.table().cloned()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeTableError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.io(self.render("DescribeTable", &e))),
        }
    }

    /// Exactly one key, `pk` of type S: anything else is another table.
    fn check_schema(&self, desc: &TableDescription) -> Result<(), StateError> {
        let keys: Vec<String> = (desc.key_schema().iter())
            .map(|k| format!("{} ({})", k.attribute_name(), k.key_type().as_str()))
            .collect();
        let pk_type = (desc.attribute_definitions().iter())
            .find(|a| a.attribute_name() == PK)
            .map(|a| a.attribute_type().as_str());
        let single = matches!(desc.key_schema(), [k] if k.attribute_name() == PK && *k.key_type() == KeyType::Hash);
        if single && pk_type == Some("S") {
            return Ok(());
        }
        Err(self.io(format!(
            "DynamoDB table {} has key schema [{}] (pk type {}), not the one rekey uses: \
             partition key \"{PK}\" of type S and no sort key; point daemon.state at a table made for rekey",
            self.whereabouts(),
            keys.join(", "),
            pk_type.unwrap_or("unknown"),
        )))
    }

    /// Rekey's index on the table, or an error saying how to add it.
    fn check_index(&self, desc: &TableDescription) -> Result<IndexStatus, StateError> {
        let command = index::update_command(&self.name, &self.region, self.endpoint.as_deref());
        index::check(desc, &self.whereabouts(), &command).map_err(|why| self.io(why))
    }

    /// CreateTable, on-demand, key `pk` (S), with rekey's index. Another replica creating it
    /// at the same time is no error: both then wait for it.
    async fn create(&self) -> Result<(), StateError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| self.io(format!("CreateTable: {e}"));
        let key = KeySchemaElement::builder()
            .attribute_name(PK)
            .key_type(KeyType::Hash)
            .build()
            .map_err(build)?;
        let attribute = AttributeDefinition::builder()
            .attribute_name(PK)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build)?;
        let (idx, gsi) = index::definition().map_err(|e| self.io(format!("CreateTable: {e}")))?;
        let answer = self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key)
            .attribute_definitions(attribute)
            .attribute_definitions(idx)
            .global_secondary_indexes(gsi)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
            Err(e) => Err(self.io(self.render("CreateTable", &e))),
        }
    }

    /// Polls DescribeTable until the table and its index are ACTIVE, up to
    /// [`CREATE_DEADLINE`].
    async fn wait_active(&self) -> Result<String, StateError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let status = match self.describe().await? {
                Some(desc) => {
                    self.check_schema(&desc)?;
                    let index = self.check_index(&desc)?;
                    let table = desc.table_status().map_or("unknown", |s| s.as_str());
                    if table == TableStatus::Active.as_str() && index == IndexStatus::Active {
                        return Ok(self.ready(Some(started.elapsed())));
                    }
                    format!("table {table}, index {} {}", index::NAME, index.as_str())
                }
                None => "not found yet".to_string(),
            };
            let pause = CREATE_POLL.delay(attempt);
            if started.elapsed() + pause > CREATE_DEADLINE {
                return Err(self.io(format!(
                    "DynamoDB table {} did not become ACTIVE within {}s (status {status})",
                    self.whereabouts(),
                    CREATE_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            attempt = attempt.saturating_add(1);
        }
    }
}
