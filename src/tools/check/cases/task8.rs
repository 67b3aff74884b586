//! Task 8: an authentication server registers users and signs them in with passwords.
//!
//! Servers word their dialogue as they like, so the checker recognises netlab's shape
//! (a user name is asked, then a password, maybe the password again, then a welcome) by
//! words in English and Russian. A dialogue it does not recognise is INFORMATIONAL, with
//! what was said; only a recognised dialogue that goes wrong is FAILED. The account is
//! made up for the run; its password shows in a report only if the server repeats it.

use super::{Ctx, Outcome, Step, random_u64};
use crate::tools::check::probe::{Ended, Probe, describe};
use crate::tools::check::report::Verdict;

#[derive(Clone)]
pub struct Account {
    user: String,
    password: String,
}

fn mentions(text: &str, words: &[&str]) -> bool {
    let text = text.to_lowercase();
    words.iter().any(|w| text.contains(w))
}

fn asks_user(text: &str) -> bool {
    mentions(
        text,
        &["user", "login", "name", "логин", "имя", "пользовател"],
    )
}

fn asks_password(text: &str) -> bool {
    mentions(text, &["password", "пароль", "парол"])
}

fn asks_again(text: &str) -> bool {
    mentions(
        text,
        &["repeat", "again", "confirm", "повтор", "ещё раз", "еще раз"],
    )
}

fn welcomes(text: &str) -> bool {
    mentions(
        text,
        &[
            "welcome",
            "signed in",
            "logged in",
            "добро пожаловать",
            "вошли",
            "успешн",
            "привет",
        ],
    )
}

fn refuses(text: &str) -> bool {
    mentions(
        text,
        &[
            "wrong",
            "incorrect",
            "invalid",
            "denied",
            "неверн",
            "неправильн",
            "ошиб",
        ],
    )
}

/// What an answer to a password says, by its words.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Welcome,
    /// Refused, or the password asked for again.
    Refusal,
    Unknown,
}

fn judge(answer: &str) -> Said {
    if refuses(answer) {
        Said::Refusal
    } else if welcomes(answer) {
        Said::Welcome
    } else if asks_password(answer) {
        Said::Refusal
    } else {
        Said::Unknown
    }
}

fn unrecognised(expected: &str, step: &str, said: &str) -> Outcome {
    Outcome::new(
        Verdict::Informational,
        expected,
        format!(
            "a dialogue unlike netlab's: {step} the server said {}",
            describe(said.as_bytes())
        ),
    )
}

/// One exchange: send `text`, return the answer as text.
fn say(ctx: &Ctx, probe: &mut Probe, text: &str, expected: &str, step: &str) -> Step<String> {
    probe
        .send(text.as_bytes())
        .map_err(|e| Outcome::failed(expected, format!("{step}: {e}")))?;
    probe
        .recv(ctx.deadline())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| Outcome::failed(expected, format!("{step}: {e}")))
}

/// Connects, from this run's own address when it can (a server may cap registrations
/// per address), and sends the user name; the answer must ask for a password.
fn start(ctx: &Ctx, user: &str, expected: &str) -> Step<Probe> {
    if !ctx.greets {
        return Err(Outcome::failed(
            expected,
            "no greeting (see 0.2): nothing asks for a user name",
        ));
    }
    let from = ctx.many_addresses().then_some(ctx.from[2]);
    let (mut probe, greeting) = ctx.open_from(from)?;
    if !asks_user(&greeting) {
        return Err(unrecognised(
            expected,
            "asked nothing about a user name:",
            &greeting,
        ));
    }
    let answer = say(ctx, &mut probe, user, expected, "after the user name")?;
    if !asks_password(&answer) {
        return Err(unrecognised(expected, "after the user name", &answer));
    }
    Ok(probe)
}

/// 8.1: a new user name, a password (twice if asked), a welcome.
pub fn register(ctx: &mut Ctx) -> Step<Outcome> {
    let account = Account {
        user: format!("check{:08x}", random_u64() as u32),
        password: format!("pw-{:016x}", random_u64()),
    };
    let expected = format!("{} registered and welcomed", account.user);
    let mut probe = start(ctx, &account.user, &expected)?;
    let mut answer = say(
        ctx,
        &mut probe,
        &account.password,
        &expected,
        "after the password",
    )?;
    if asks_again(&answer) {
        answer = say(
            ctx,
            &mut probe,
            &account.password,
            &expected,
            "after the repeated password",
        )?;
    }
    if judge(&answer) != Said::Welcome {
        return Err(unrecognised(&expected, "after the password", &answer));
    }
    ctx.account = Some(account);
    Ok(Outcome::ok(expected, describe(answer.as_bytes())))
}

/// The account of 8.1, registering one now if 8.1 was not selected.
fn account(ctx: &mut Ctx) -> Step<Account> {
    if ctx.account.is_none() {
        register(ctx)
            .map_err(|o| Outcome::skipped(format!("no account was registered: {}", o.actual)))?;
    }
    Ok(ctx.account.clone().expect("registered just now"))
}

/// 8.2: the account signs in again with its password.
pub fn sign_in(ctx: &mut Ctx) -> Step<Outcome> {
    let account = account(ctx)?;
    let expected = format!("{} signed in with its password", account.user);
    let mut probe = start(ctx, &account.user, &expected)?;
    let answer = say(
        ctx,
        &mut probe,
        &account.password,
        &expected,
        "after the password",
    )?;
    let said = describe(answer.as_bytes());
    match judge(&answer) {
        Said::Welcome => Ok(Outcome::ok(expected, said)),
        Said::Refusal => Err(Outcome::failed(
            expected,
            format!("the password chosen at registration was refused: {said}"),
        )),
        Said::Unknown => Err(unrecognised(&expected, "after the password", &answer)),
    }
}

/// 8.3: a wrong password does not sign in.
pub fn wrong_password(ctx: &mut Ctx) -> Step<Outcome> {
    let account = account(ctx)?;
    let expected = format!("a wrong password for {} refused", account.user);
    let mut probe = start(ctx, &account.user, &expected)?;
    let wrong = format!("{}-wrong", account.password);
    probe
        .send(wrong.as_bytes())
        .map_err(|e| Outcome::failed(&expected, e.to_string()))?;
    match probe.recv(ctx.deadline()) {
        Ok(bytes) => {
            let answer = String::from_utf8_lossy(&bytes);
            let said = describe(&bytes);
            match judge(&answer) {
                Said::Refusal => Ok(Outcome::ok(expected, said)),
                Said::Welcome => Err(Outcome::failed(
                    expected,
                    format!("signed in with a wrong password: {said}"),
                )),
                Said::Unknown => Err(unrecognised(&expected, "after a wrong password", &answer)),
            }
        }
        Err(Ended::Silent { .. }) => Err(Outcome::new(
            Verdict::Informational,
            expected,
            "no answer to a wrong password within the timeout",
        )),
        Err(e) => Ok(Outcome::ok(expected, format!("refused: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_their_words_in_english_and_russian() {
        assert_eq!(
            judge("Welcome, and thank you for registering"),
            Said::Welcome
        );
        assert_eq!(judge("Добро пожаловать!"), Said::Welcome);
        assert_eq!(judge("Wrong password. Password:"), Said::Refusal);
        assert_eq!(judge("Неверный пароль"), Said::Refusal);
        assert_eq!(judge("Password:"), Said::Refusal);
        assert_eq!(judge("Welcome? No: wrong password"), Said::Refusal);
        assert_eq!(judge("ok"), Said::Unknown);
    }
}
