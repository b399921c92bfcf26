// session.js signs the wall screen in. The gateway answers only a signed-in
// browser: it holds an HttpOnly session cookie (SameSite=Strict) that the
// page's fetches and its WebSocket carry by themselves, so no secret is ever
// in a URL or a script. A browser gets the cookie from a one-time code in the
// page's URL (printed by `iochub dev`; removed from the address bar at once)
// or from a key pasted into the login form.
import { t } from './i18n.js';
import { $ } from './dom.js';

/** @returns {HTMLInputElement} */
const keyInput = () => /** @type {HTMLInputElement} */ ($('login-key'));

// exchange posts a code or a token to /v1/session; true when signed in.
/** @param {string} field @param {string} value */
async function exchange(field, value) {
  const res = await fetch('/v1/session', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ [field]: value }),
    credentials: 'same-origin',
  });
  return res.ok;
}

// whoAmI is the signed-in principal, null when nobody is, or undefined when
// the server has no sessions at all (a server without access control).
async function whoAmI() {
  const res = await fetch('/v1/session', { credentials: 'same-origin' });
  if (res.status === 401) return null;
  if (!res.ok) return undefined;
  return (await res.json())?.principal ?? undefined;
}

// takeCode removes ?code= from the address bar (and history) and returns it.
function takeCode() {
  const url = new URL(location.href);
  const code = url.searchParams.get('code');
  if (code === null) return '';
  url.searchParams.delete('code');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  return code;
}

// showLogin shows the login form and resolves once a pasted key signed in.
/**
 * @param {string} [message]
 * @returns {Promise<any>}
 */
export function showLogin(message = '') {
  const form = /** @type {HTMLFormElement} */ ($('login'));
  const error = $('login-error');
  form.hidden = false;
  error.textContent = message;
  error.hidden = message === '';
  keyInput().focus();
  return new Promise((resolve) => {
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const key = keyInput().value.trim();
      if (!key) return;
      let ok = false;
      try {
        ok = await exchange('token', key);
      } catch (err) {
        console.warn('signing in', err);
      }
      if (!ok) {
        error.textContent = t('login.refused');
        error.hidden = false;
        return;
      }
      keyInput().value = '';
      form.hidden = true;
      form.onsubmit = null;
      resolve(await whoAmI());
    };
  });
}

// showWho puts the signed-in identity and the logout button in the bar.
/** @param {any} principal */
function showWho(principal) {
  const who = $('who');
  if (!principal) {
    who.hidden = true;
    return;
  }
  $('who-name').textContent = principal.name || principal.id;
  who.hidden = false;
}

// signIn resolves with the principal once the browser is signed in: by the
// URL's one-time code, by an existing cookie, or by the login form.
export async function signIn() {
  const code = takeCode();
  if (code) {
    try {
      await exchange('code', code); // a used or expired code falls through to the form
    } catch (err) {
      console.warn('exchanging the sign-in code', err);
    }
  }
  let principal;
  try {
    principal = await whoAmI();
  } catch (err) {
    console.warn('asking who is signed in', err);
  }
  if (principal === null) {
    principal = await showLogin(code ? t('login.codeUsed') : '');
  }
  showWho(principal);
  $('logout').onclick = async () => {
    await fetch('/v1/session', { method: 'DELETE', credentials: 'same-origin' });
    location.reload();
  };
  return principal;
}
