/*
 * Self-hosted anti-robot check (ALTCHA-compatible proof of work).
 *
 * For every element with [data-captcha] whose data-captcha-challenge holds
 * {algorithm, challenge, maxnumber, salt, signature}, find the number n such that
 * SHA-256(salt + n) == challenge and put base64(JSON {algorithm, challenge, number,
 * salt, signature, took}) in the hidden input [data-captcha-payload]
 * (name="captcha_payload"). While it works, the fallback question
 * ([data-captcha-fallback]) is hidden; it comes back if anything fails, and without
 * JavaScript it is simply there. Progress is told in [data-captcha-status]
 * (role="status"), in the words of the widget's data-captcha-text-{working,waiting,
 * done,failed} attributes (the page's language), French when they are missing. A form
 * submitted before the end waits for it, then is sent.
 *
 * An external file, no inline script: the Content-Security-Policy forbids them.
 */
(function () {
  "use strict";

  var TEXT = {
    working: "Vérification anti-robot en cours…",
    waiting: "Vérification anti-robot en cours… Le formulaire sera envoyé dès qu'elle sera terminée.",
    done: "Vérification terminée.",
    failed: "La vérification automatique n'a pas abouti : répondez à la question ci-dessous."
  };

  // -- SHA-256 in plain JavaScript, for pages where crypto.subtle is missing
  // (it only exists in secure contexts: https or localhost).
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];

  function rotr(x, n) {
    return (x >>> n) | (x << (32 - n));
  }

  function sha256HexSync(text) {
    var bytes = new TextEncoder().encode(text);
    var length = bytes.length;
    var padded = ((length + 9 + 63) >> 6) << 6;
    var m = new Uint8Array(padded);
    m.set(bytes);
    m[length] = 0x80;
    var view = new DataView(m.buffer);
    view.setUint32(padded - 8, Math.floor(length / 0x20000000));
    view.setUint32(padded - 4, (length * 8) >>> 0);
    var H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var W = new Array(64);
    for (var offset = 0; offset < padded; offset += 64) {
      var i;
      for (i = 0; i < 16; i++) {
        W[i] = view.getUint32(offset + i * 4);
      }
      for (i = 16; i < 64; i++) {
        var s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
        var s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (i = 0; i < 64; i++) {
        var t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0;
        d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }
    var hex = "";
    for (var j = 0; j < 8; j++) {
      hex += ("00000000" + (H[j] >>> 0).toString(16)).slice(-8);
    }
    return hex;
  }

  function bufferToHex(buffer) {
    var bytes = new Uint8Array(buffer);
    var hex = "";
    for (var i = 0; i < bytes.length; i++) {
      hex += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return hex;
  }

  function nextTask() {
    return new Promise(function (resolve) { setTimeout(resolve, 0); });
  }

  // Find the number; resolves to it, or to null when there is none up to maxnumber.
  // Works in batches and yields to the page between them, so it never freezes it.
  function solve(challenge) {
    var subtle = globalThis.crypto && globalThis.crypto.subtle;
    var encoder = new TextEncoder();
    var target = challenge.challenge;
    var max = challenge.maxnumber;
    var batch = subtle ? 64 : 2000;

    function hashSubtle(n) {
      return subtle.digest("SHA-256", encoder.encode(challenge.salt + n)).then(bufferToHex);
    }

    function fromSubtle(start) {
      var jobs = [];
      for (var n = start; n < start + batch && n <= max; n++) {
        jobs.push(hashSubtle(n));
      }
      return Promise.all(jobs).then(function (hashes) {
        var index = hashes.indexOf(target);
        return index >= 0 ? start + index : -1;
      });
    }

    function fromScript(start) {
      for (var n = start; n < start + batch && n <= max; n++) {
        if (sha256HexSync(challenge.salt + n) === target) {
          return Promise.resolve(n);
        }
      }
      return Promise.resolve(-1);
    }

    var step = subtle ? fromSubtle : fromScript;

    function from(start) {
      if (start > max) {
        return Promise.resolve(null);
      }
      return step(start).then(function (found) {
        if (found >= 0) {
          return found;
        }
        return nextTask().then(function () { return from(start + batch); });
      });
    }
    return from(0);
  }

  function encodePayload(challenge, number, took) {
    var json = JSON.stringify({
      algorithm: challenge.algorithm,
      challenge: challenge.challenge,
      number: number,
      salt: challenge.salt,
      signature: challenge.signature,
      took: took
    });
    return btoa(json); // the JSON is plain ASCII (hex, digits, base64url-free salt)
  }

  function setup(widget) {
    var challenge;
    try {
      challenge = JSON.parse(widget.getAttribute("data-captcha-challenge") || "null");
    } catch (err) {
      challenge = null;
    }
    if (!challenge || challenge.algorithm !== "SHA-256" || !window.TextEncoder || !window.Promise) {
      return; // nothing to solve: the fallback question stays
    }
    var payload = widget.querySelector("[data-captcha-payload]");
    var status = widget.querySelector("[data-captcha-status]");
    var fallback = widget.querySelector("[data-captcha-fallback]");
    var form = widget.closest("form");
    var state = { solved: false, failed: false, pendingSubmitter: undefined };

    function say(key) {
      if (status) {
        status.textContent = widget.getAttribute("data-captcha-text-" + key) || TEXT[key];
      }
    }

    if (fallback) {
      fallback.hidden = true;
    }
    say("working");

    if (form) {
      form.addEventListener("submit", function (event) {
        if (state.solved || state.failed) {
          return;
        }
        event.preventDefault();
        state.pendingSubmitter = event.submitter || null;
        say("waiting");
      });
    }

    var started = Date.now();
    solve(challenge).then(function (number) {
      if (number === null) {
        throw new Error("no solution");
      }
      payload.value = encodePayload(challenge, number, Date.now() - started);
      state.solved = true;
      say("done");
    }).catch(function () {
      state.failed = true;
      if (fallback) {
        fallback.hidden = false;
      }
      say("failed");
    }).then(function () {
      if (form && state.pendingSubmitter !== undefined && state.solved) {
        if (form.requestSubmit) {
          form.requestSubmit(state.pendingSubmitter || undefined);
        } else {
          form.submit();
        }
      }
    });
  }

  function start() {
    var widgets = document.querySelectorAll("[data-captcha]");
    for (var i = 0; i < widgets.length; i++) {
      setup(widgets[i]);
    }
  }

  // Exposed for tests and for pages that add a form dynamically.
  globalThis.idpCaptcha = { sha256Hex: sha256HexSync, solve: solve, encodePayload: encodePayload, start: start };

  if (typeof document !== "undefined") {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", start);
    } else {
      start();
    }
  }
})();
