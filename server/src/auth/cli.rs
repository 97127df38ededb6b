//! `streamboard user add NAME --role ROLE`: adds a user to the database (`--database`, or
//! `streamboard.db` in `--data-dir`) (or, with `--replace`, sets an existing user's password and role and ends their
//! sessions). The password is prompted for twice without echo on a terminal, and read as the
//! first line of standard input otherwise (`echo "$PW" | streamboard user add ci --role viewer`).

use super::{Auth, AuthConfig, AuthMode, LoginError, Role, password, throttle::Limits};
use crate::storage::{Database, DatabaseUrl};
use std::{
    io::{BufRead, IsTerminal},
    path::PathBuf,
    time::Duration,
};

/// A resolved `streamboard user` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCommand {
    pub data_dir: PathBuf,
    pub database: Option<DatabaseUrl>,
    pub name: String,
    pub role: Role,
    /// Set the password and role of an existing user instead of refusing the name.
    pub replace: bool,
}

/// Why `streamboard user` failed.
#[derive(Debug, thiserror::Error)]
pub enum UserCliError {
    #[error("cannot read the password: {0}")]
    Read(std::io::Error),
    #[error("the two passwords differ")]
    Mismatch,
    #[error("{0}")]
    Refused(#[from] LoginError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("no user named {0:?} (leave out --replace to add one)")]
    NoSuchUser(String),
}

fn read_password() -> Result<String, UserCliError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(UserCliError::Read)?;
        let second = rpassword::prompt_password("Again: ").map_err(UserCliError::Read)?;
        if first != second {
            return Err(UserCliError::Mismatch);
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(UserCliError::Read)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

/// Runs the command; the message printed on success says what changed.
pub async fn run(command: UserCommand) -> Result<String, UserCliError> {
    let password = read_password()?;
    let database = Database::connect(command.database.as_ref(), &command.data_dir).await?;
    let result = apply(&database, &command, &password).await;
    database.close().await;
    result
}

async fn apply(
    database: &Database,
    command: &UserCommand,
    password: &str,
) -> Result<String, UserCliError> {
    let auth = Auth::new(
        database.clone(),
        AuthConfig {
            mode: AuthMode::Password,
            session_ttl: Duration::from_secs(1),
            limits: Limits {
                failures_per_user: 1,
                failures_per_address: 1,
                window_ms: 1,
            },
            proxy_default_role: Role::Viewer,
        },
    );
    if command.replace {
        let name = super::check_user_name(&command.name)?;
        password::check_new(password).map_err(|e| LoginError::Invalid {
            field: "password",
            message: e.to_string(),
        })?;
        let hash = tokio::task::spawn_blocking({
            let password = password.to_string();
            move || password::hash(&password)
        })
        .await
        .map_err(|_| LoginError::Busy)?
        .map_err(|e| LoginError::Invalid {
            field: "password",
            message: e.to_string(),
        })?;
        if !database.update_user(&name, command.role, &hash).await? {
            return Err(UserCliError::NoSuchUser(name));
        }
        return Ok(format!(
            "user {name:?} now has role {} and the new password; their sessions were ended",
            command.role
        ));
    }
    auth.create_user(&command.name, command.role, password)
        .await?;
    Ok(format!(
        "added user {:?} with role {}",
        command.name.trim(),
        command.role
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn add_then_replace() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(dir.path()).await.unwrap();
        let mut command = UserCommand {
            data_dir: dir.path().to_path_buf(),
            database: None,
            name: "ada".into(),
            role: Role::Admin,
            replace: false,
        };
        let said = apply(&database, &command, "a long password").await.unwrap();
        assert_eq!(said, "added user \"ada\" with role admin");
        let again = apply(&database, &command, "a long password").await;
        assert!(again.unwrap_err().to_string().contains("already exists"));
        command.replace = true;
        command.role = Role::Viewer;
        apply(&database, &command, "another password")
            .await
            .unwrap();
        let user = database.user_by_name("ada").await.unwrap().unwrap();
        assert_eq!(user.role, Role::Viewer);
        assert!(password::verify("another password", &user.password_hash));
        command.name = "nobody".into();
        assert!(matches!(
            apply(&database, &command, "another password").await,
            Err(UserCliError::NoSuchUser(_))
        ));
    }
}
