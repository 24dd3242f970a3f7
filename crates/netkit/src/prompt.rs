//! Asking for a password on the terminal. Echo is turned off before the
//! prompt is shown, so nothing typed once the prompt is visible is ever
//! echoed; showing the prompt first (as rpassword does) leaves a moment in
//! which a quick typist's or a paste's first characters appear on screen.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};

use std::os::fd::{AsRawFd, BorrowedFd};

/// Shows `prompt` on the controlling terminal and reads one line from it
/// without echo; the terminal's settings are restored whatever happens.
pub fn hidden(prompt: &str) -> io::Result<String> {
    use std::os::fd::AsFd;
    let tty = File::options().read(true).write(true).open("/dev/tty")?;
    let saved = get_attributes(tty.as_fd())?;
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    // Enter still moves to the next line.
    quiet.c_lflag |= libc::ECHONL;
    set_attributes(tty.as_fd(), &quiet)?;
    let read = (|| -> io::Result<String> {
        (&tty).write_all(prompt.as_bytes())?;
        (&tty).flush()?;
        let mut line = String::new();
        BufReader::new(&tty).read_line(&mut line)?;
        Ok(line)
    })();
    set_attributes(tty.as_fd(), &saved)?;
    let mut line = read?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

fn get_attributes(tty: BorrowedFd<'_>) -> io::Result<libc::termios> {
    // SAFETY: termios is plain data, filled in by tcgetattr.
    let mut attributes: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a live termios to write into.
    if unsafe { libc::tcgetattr(tty.as_raw_fd(), &mut attributes) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attributes)
}

fn set_attributes(tty: BorrowedFd<'_>, attributes: &libc::termios) -> io::Result<()> {
    // SAFETY: a live termios to read from.
    if unsafe { libc::tcsetattr(tty.as_raw_fd(), libc::TCSANOW, attributes) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
