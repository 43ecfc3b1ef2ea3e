/* Ferrobase admin dashboard: small progressive enhancements (ES2017, no modules).
 * Every page works without this file. Loaded with `defer` on every dashboard page, with or
 * without htmx: all behaviour is delegated from `document`, so content swapped in by htmx
 * works too, and no htmx API is called (its events simply never fire when it is absent).
 */
(function () {
  'use strict';
  var doc = document;
  doc.documentElement.classList.add('js'); // CSS collapses the mobile nav only when JS runs

  function decode(s) { try { return decodeURIComponent(s); } catch (e) { return s; } }
  function forEach(list, fn) { Array.prototype.forEach.call(list || [], fn); }

  /* 1. Hash routing for PocketBase-style links (/_/#/pbinstall/TOKEN, /_/#/auth/...). */
  function routeHash() {
    var h = location.hash || '', m;
    if ((m = /^#\/pbinstall\/([^\/?#]+)/.exec(h))) {
      location.replace('/_/install/' + encodeURIComponent(decode(m[1])));
      return;
    }
    m = /^#\/auth\/(confirm-verification|confirm-password-reset|confirm-email-change)\/([^\/?#]+)/.exec(h);
    if (m) { location.replace('/_/auth/' + m[1] + '/' + encodeURIComponent(decode(m[2]))); return; }
    m = /^#\/auth\/(oauth2-redirect-success|oauth2-redirect-failure)\b/.exec(h);
    if (m) location.replace('/_/auth/' + m[1]);
  }
  routeHash();
  window.addEventListener('hashchange', routeHash);

  /* 2. CSRF header for htmx requests. */
  doc.addEventListener('htmx:configRequest', function (evt) {
    var meta = doc.querySelector('meta[name="csrf-token"]');
    var token = meta && meta.getAttribute('content');
    if (token && evt.detail && evt.detail.headers) evt.detail.headers['X-CSRF-Token'] = token;
  });

  /* 3. Confirmations: data-confirm on a form (submit) or a button/link (click).
   * Capture phase, so a cancelled action never reaches htmx's own listeners. */
  doc.addEventListener('click', function (e) {
    var el = e.target.closest && e.target.closest('button[data-confirm], input[data-confirm], a[data-confirm]');
    if (el && !window.confirm(el.getAttribute('data-confirm'))) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);
  doc.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.hasAttribute || !form.hasAttribute('data-confirm')) return;
    if (e.submitter && e.submitter.hasAttribute('data-confirm')) return; // already asked on click
    if (!window.confirm(form.getAttribute('data-confirm'))) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);

  /* 4. Select-all checkboxes and buttons that need a selection (per form; form.elements
   * also covers controls attached with the form="" attribute). */
  function updateSelection(form) {
    if (!form) return;
    var boxes = [], checked = 0;
    forEach(form.elements, function (el) {
      if (el.type === 'checkbox' && el.name === 'ids') { boxes.push(el); if (el.checked) checked++; }
    });
    forEach(form.elements, function (el) {
      if (el.hasAttribute('data-select-all')) {
        el.checked = boxes.length > 0 && checked === boxes.length;
        el.indeterminate = checked > 0 && checked < boxes.length;
      } else if (el.hasAttribute('data-needs-selection')) {
        el.disabled = checked === 0;
      }
    });
  }
  function initSelection(root) {
    forEach(root.querySelectorAll('[data-select-all], [data-needs-selection]'), function (el) {
      updateSelection(el.form);
    });
  }

  /* 5. JSON textareas: live validation into the next .json-status sibling, and formatting. */
  function jsonStatus(ta) {
    for (var el = ta.nextElementSibling; el; el = el.nextElementSibling) {
      if (el.classList.contains('json-status')) return el;
    }
    var field = ta.closest('.field');
    return field && field.querySelector('.json-status');
  }
  function checkJson(ta) {
    var status = jsonStatus(ta), text = ta.value.trim(), msg = '', ok = true;
    if (text !== '') {
      try { JSON.parse(text); msg = 'valid JSON'; } catch (e) { ok = false; msg = e.message; }
    }
    ta.setAttribute('aria-invalid', ok ? 'false' : 'true');
    if (!status) return;
    if (!status.hasAttribute('aria-live')) status.setAttribute('aria-live', 'polite');
    status.textContent = msg;
    status.classList.toggle('ok', ok && msg !== '');
    status.classList.toggle('err', !ok);
  }
  function formatJson(btn) {
    var ta = doc.getElementById(btn.getAttribute('data-json-format'));
    if (!ta || ta.value.trim() === '') return;
    try {
      ta.value = JSON.stringify(JSON.parse(ta.value), null, 2);
    } catch (e) { /* leave the text as it is; checkJson shows the error */ }
    checkJson(ta);
  }

  /* 6. File previews: list chosen files into the element named by data-preview. */
  var objectUrls = new WeakMap();
  function formatSize(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KB';
    return (n / 1048576).toFixed(1) + ' MB';
  }
  function previewFiles(input) {
    var out = doc.getElementById(input.getAttribute('data-preview'));
    if (!out) return;
    forEach(objectUrls.get(out), function (u) { URL.revokeObjectURL(u); });
    var urls = [];
    out.textContent = '';
    var itemTag = /^(UL|OL)$/.test(out.tagName) ? 'li' : 'div';
    forEach(input.files, function (file) {
      var item = doc.createElement(itemTag), icon;
      item.className = 'file-item';
      if (/^image\//.test(file.type) && window.URL && URL.createObjectURL) {
        icon = doc.createElement('img');
        icon.className = 'thumb';
        icon.alt = '';
        icon.src = URL.createObjectURL(file);
        urls.push(icon.src);
        icon.addEventListener('error', function () { icon.remove(); }); // e.g. blocked by CSP img-src
      } else {
        icon = doc.createElement('span');
        icon.className = 'file-icon';
        icon.textContent = (file.name.split('.').pop() || '').slice(0, 4);
      }
      var name = doc.createElement('span');
      name.className = 'name';
      name.textContent = file.name;
      var size = doc.createElement('span');
      size.className = 'size';
      size.textContent = formatSize(file.size);
      item.append(icon, name, size);
      out.appendChild(item);
    });
    objectUrls.set(out, urls);
  }

  /* 7. Rule "Superusers only" checkboxes: purely visual .locked on the wrapping .rule. */
  function syncLock(cb) {
    var ta = doc.getElementById(cb.getAttribute('data-lock-rule'));
    var rule = (ta && ta.closest('.rule')) || cb.closest('.rule');
    if (rule) rule.classList.toggle('locked', cb.checked);
  }

  /* Delegated listeners. */
  doc.addEventListener('change', function (e) {
    var el = e.target;
    if (!el.matches) return;
    if (el.matches('[data-select-all]')) {
      forEach(el.form && el.form.elements, function (box) {
        if (box.type === 'checkbox' && box.name === 'ids' && !box.disabled) box.checked = el.checked;
      });
    }
    if (el.matches('input[type=checkbox][name=ids], [data-select-all]')) updateSelection(el.form);
    if (el.matches('input[type=file][data-preview]')) previewFiles(el);
    if (el.matches('input[data-lock-rule]')) syncLock(el);
    if (el.matches('[data-autosubmit]') && el.form) {
      if (el.form.requestSubmit) el.form.requestSubmit(); else el.form.submit();
    }
  });
  doc.addEventListener('input', function (e) {
    if (e.target.matches && e.target.matches('textarea[data-json]')) checkJson(e.target);
  });
  doc.addEventListener('click', function (e) {
    if (!e.target.closest) return;
    var fmt = e.target.closest('[data-json-format]');
    if (fmt) { e.preventDefault(); formatJson(fmt); return; }
    var toggle = e.target.closest('button.nav-toggle');
    if (toggle) {
      var nav = toggle.closest('nav.sidebar') || doc.querySelector('nav.sidebar');
      if (!nav) return;
      var open = nav.classList.toggle('open');
      toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    }
  });
  doc.addEventListener('keydown', function (e) { // Escape closes the mobile menu
    var nav = doc.querySelector('nav.sidebar.open');
    if (e.key !== 'Escape' || !nav) return;
    nav.classList.remove('open');
    var toggle = nav.querySelector('button.nav-toggle');
    if (toggle) { toggle.setAttribute('aria-expanded', 'false'); toggle.focus(); }
  });

  /* Initial state, again after back/forward restores form state, and for htmx swaps. */
  function init(root) {
    root = root || doc;
    initSelection(root);
    forEach(root.querySelectorAll('input[data-lock-rule]'), syncLock);
    forEach(root.querySelectorAll('button.nav-toggle:not([aria-expanded])'), function (b) {
      b.setAttribute('aria-expanded', 'false');
    });
  }
  function initWhenReady() { init(doc); }
  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', initWhenReady);
  else initWhenReady();
  window.addEventListener('pageshow', initWhenReady);
  doc.addEventListener('htmx:load', initWhenReady);
})();
