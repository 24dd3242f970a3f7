//! Asking for a password on the terminal. Echo is turned off before the
//! prompt is shown, so nothing typed once the prompt is visible is ever
//! echoed; showing the prompt first (as rpassword does) leaves a moment in
//! which a quick typist's or a paste's first characters appear on screen.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};

use rustix::termios::{self, LocalModes, OptionalActions};

/// Shows `prompt` on the controlling terminal and reads one line from it
/// without echo; the terminal's settings are restored whatever happens.
pub fn hidden(prompt: &str) -> io::Result<String> {
    let tty = File::options().read(true).write(true).open("/dev/tty")?;
    let saved = termios::tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    // Enter still moves to the next line.
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(&tty, OptionalActions::Now, &quiet)?;
    let read = (|| -> io::Result<String> {
        (&tty).write_all(prompt.as_bytes())?;
        (&tty).flush()?;
        let mut line = String::new();
        BufReader::new(&tty).read_line(&mut line)?;
        Ok(line)
    })();
    termios::tcsetattr(&tty, OptionalActions::Now, &saved)?;
    let mut line = read?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}
