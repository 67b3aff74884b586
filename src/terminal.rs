//! Reading an answer from the person at the terminal: a line they can edit, or a secret
//! that is not echoed.
//!
//! Invariant: the end of input (Ctrl-D on an empty line) is an answer of its own, `None`,
//! never an empty string. console's line readers (and dialoguer's `Input`, which is built
//! on them) drop Ctrl-D, so a user who wanted out was left at a question only Ctrl-C
//! could leave, and a hidden read took Ctrl-D for an empty password.

use std::io::{self, BufRead, IsTerminal};
use std::os::fd::AsRawFd;

use console::{Key, Term};
use zeroize::Zeroizing;

/// Far more than any host name or port; what a paste beyond it holds is not taken.
const MAX_LINE_CHARS: usize = 1024;

/// Ctrl-D, as a terminal in raw mode delivers it.
const END_OF_INPUT: char = '\x04';
/// Ctrl-U: erase what was typed, as in a shell.
const ERASE_LINE: char = '\x15';

/// One line typed at `term` (which must be a terminal), echoed as it is typed, with
/// Backspace and Ctrl-U for corrections. `None` when the user ends input instead.
pub fn read_line(term: &Term) -> io::Result<Option<String>> {
    let mut typed = String::new();
    loop {
        let key = match term.read_key() {
            Ok(key) => key,
            // The terminal went away (hang-up): that is the end of input too.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        };
        match key {
            Key::Enter => return Ok(Some(typed)),
            Key::Char(END_OF_INPUT) if typed.is_empty() => return Ok(None),
            Key::Char(ERASE_LINE) => {
                term.clear_chars(console::measure_text_width(&typed))?;
                typed.clear();
            }
            Key::Backspace => {
                if let Some(c) = typed.pop() {
                    let mut buf = [0; 4];
                    term.clear_chars(console::measure_text_width(c.encode_utf8(&mut buf)))?;
                }
            }
            Key::Char(c) if !c.is_control() && typed.chars().count() < MAX_LINE_CHARS => {
                typed.push(c);
                let mut buf = [0; 4];
                term.write_str(c.encode_utf8(&mut buf))?;
            }
            _ => {}
        }
        term.flush()?;
    }
}

/// One line from standard input with the terminal's echo turned off, then a line break on
/// stderr in place of the Enter that was not shown. `None` at the end of input.
///
/// The terminal keeps its own line editing (cooked mode): Backspace works, and Ctrl-C
/// still interrupts.
pub fn read_hidden() -> io::Result<Option<Zeroizing<String>>> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Err(io::Error::other("standard input is not a terminal"));
    }
    let line = {
        let _quiet = EchoOff::new(stdin.as_raw_fd())?;
        let mut line = Zeroizing::new(String::new());
        let read = stdin.lock().read_line(&mut line)?;
        (read > 0).then_some(line)
    };
    eprintln!();
    Ok(line.map(|mut line| {
        let len = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(len);
        line
    }))
}

/// The terminal on `fd` with echo off, until dropped: the settings come back on every
/// way out, an error included.
struct EchoOff {
    fd: i32,
    original: libc::termios,
}

impl EchoOff {
    fn new(fd: i32) -> io::Result<Self> {
        // SAFETY: tcgetattr fills the termios it is given; it is read only on success.
        let original = unsafe {
            let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
            if libc::tcgetattr(fd, termios.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            termios.assume_init()
        };
        let mut quiet = original;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: fd is open and `quiet` a valid termios taken from it.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EchoOff { fd, original })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: the same fd and the settings it had before.
        unsafe { libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.original) };
    }
}
