/** Who a request acts for, as the auth middleware establishes it. Routes read it with `c.get('principal')`. */
export interface UserPrincipal {
  kind: 'user';
  userId: string;
  email: string;
  username: string;
}
