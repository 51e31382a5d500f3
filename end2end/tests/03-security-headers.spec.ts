import { expect, test } from '@playwright/test';
import { admin, hydrated, signIn } from './helpers';

// The Content-Security-Policy must not break the console: Leptos' hydration script carries the
// page's nonce, the wasm bundle needs 'wasm-unsafe-eval', server functions are same-origin.
test('console pages hydrate and work under the Content-Security-Policy', async ({ page }) => {
  await page.addInitScript(() => {
    (window as any).__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      (window as any).__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (/content security policy|refused to/i.test(m.text())) consoleErrors.push(m.text());
  });

  const res = await page.goto('/sign-in');
  const headers = res!.headers();
  expect(headers['content-security-policy']).toContain("'nonce-");
  expect(headers['content-security-policy']).toContain("'wasm-unsafe-eval'");
  expect(headers['cache-control']).toBe('no-store');
  await hydrated(page);

  // A wrong password is a 400 with its message shown, not a 500.
  const wrong = page.waitForResponse((r) => r.url().includes('/api/sign_in'));
  await page.getByLabel('Email').fill(admin.email);
  await page.getByLabel('Password').fill('certainly not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  expect((await wrong).status()).toBe(400);
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');

  await signIn(page);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(admin.org);
  // Client-side navigation after hydration still works.
  await page.goto('/');
  await hydrated(page);

  const violations = await page.evaluate(() => (window as any).__cspViolations);
  expect(violations).toEqual([]);
  expect(consoleErrors).toEqual([]);
});
